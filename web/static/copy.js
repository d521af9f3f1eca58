// Plein: a "Copy" button beside a read-only field (the invitation link to pass on when the
// server sends no mail, issue 17). Without JavaScript the field can still be selected and
// copied by hand; the button only saves that step and says it worked.
(function () {
  'use strict'

  function copy (button) {
    var field = document.getElementById(button.getAttribute('data-copy'))
    var said = document.getElementById(button.getAttribute('data-copy') + '-copied')
    if (!field) return
    function done () { if (said) said.hidden = false }
    field.focus()
    field.select()
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        if (document.execCommand('copy')) done()
      })
    } else if (document.execCommand('copy')) {
      done()
    }
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-copy]')
    if (button) copy(button)
  })
})()
