// Plein: say so when a text field is full. The browser's maxlength stops typing and cuts
// pasted text at the limit without a word (issue 17: a name "truncated without a word"); this
// shows the limit under the field as soon as it is reached. The text comes translated from the
// body's data-text-limit attribute ({n} = the limit).
(function () {
  'use strict'

  function note (field) {
    var id = field.id + '-limit'
    var found = document.getElementById(id)
    if (found) return found
    var made = document.createElement('p')
    made.id = id
    made.className = 'hint limit-reached'
    made.setAttribute('role', 'status')
    field.insertAdjacentElement('afterend', made)
    return made
  }

  function check (field) {
    var max = parseInt(field.getAttribute('maxlength'), 10)
    if (!(max > 0) || !field.id) return
    var full = field.value.length >= max
    var existing = document.getElementById(field.id + '-limit')
    if (!full) {
      if (existing) existing.hidden = true
      return
    }
    var shown = existing || note(field)
    var text = document.body.getAttribute('data-text-limit') || 'At most {n} characters.'
    shown.textContent = text.replace('{n}', String(max))
    shown.hidden = false
  }

  document.addEventListener('input', function (event) {
    var field = event.target
    if (field && (field.tagName === 'INPUT' || field.tagName === 'TEXTAREA') &&
        field.hasAttribute('maxlength')) check(field)
  })
})()
