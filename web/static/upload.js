// Plein: uploads with a progress bar per file, and drag and drop onto the page.
//
// Progressive enhancement of <form data-upload>: without this script the form is a plain
// multipart post to a page route. With it, each chosen or dropped file goes to the JSON API
// (data-upload-url, header X-CSRF-Token from data-csrf) with its own <progress>, errors are
// shown per file, and at the end the document list is refreshed (data-after="refresh") or the
// page reloaded (data-after="reload"). All texts come translated from data-text-* attributes.
(function () {
  'use strict'

  var PARALLEL = 3

  function text (form, key, name) {
    var value = form.getAttribute('data-text-' + key) || key
    return name === undefined ? value : value.replace('{name}', name)
  }

  function errorText (form, xhr) {
    var code = ''
    try { code = (JSON.parse(xhr.responseText).error || {}).code || '' } catch (e) { code = '' }
    if (xhr.status === 0) return text(form, 'network')
    if (xhr.status === 413) return text(form, code === 'quota_exceeded' ? 'quota' : 'too-large')
    if (xhr.status === 415) return text(form, 'unsupported')
    if (code === 'empty_file') return text(form, 'empty')
    if (xhr.status === 403 || xhr.status === 404) return text(form, 'forbidden')
    return text(form, 'failed') + ' (' + xhr.status + ')'
  }

  function row (form, list, file) {
    var item = document.createElement('li')
    item.className = 'upload-item'
    item.dataset.state = 'uploading'
    var name = document.createElement('span')
    name.className = 'upload-name'
    name.textContent = file.name
    var bar = document.createElement('progress')
    bar.max = 100
    bar.value = 0
    bar.setAttribute('aria-label', text(form, 'progress', file.name))
    var status = document.createElement('span')
    status.className = 'upload-status'
    status.setAttribute('role', 'status')
    status.textContent = text(form, 'uploading')
    item.append(name, bar, status)
    list.appendChild(item)
    return { item: item, bar: bar, status: status }
  }

  function send (form, file, view) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest()
      xhr.open('POST', form.dataset.uploadUrl)
      xhr.setRequestHeader('X-CSRF-Token', form.dataset.csrf || '')
      xhr.setRequestHeader('Accept', 'application/json')
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) view.bar.value = Math.round(event.loaded / event.total * 99)
      }
      xhr.onload = function () {
        var ok = xhr.status >= 200 && xhr.status < 300
        var unchanged = false
        if (ok) {
          try { unchanged = JSON.parse(xhr.responseText).unchanged === true } catch (e) { unchanged = false }
        }
        view.bar.value = ok ? 100 : view.bar.value
        view.item.dataset.state = ok ? 'done' : 'error'
        view.status.textContent = ok ? text(form, unchanged ? 'unchanged' : 'done') : errorText(form, xhr)
        resolve(ok && !unchanged)
      }
      xhr.onerror = function () {
        view.item.dataset.state = 'error'
        view.status.textContent = text(form, 'network')
        resolve(false)
      }
      var body = new FormData()
      body.append('file', file, file.name)
      xhr.send(body)
    })
  }

  function refreshList () {
    var current = document.querySelector('[data-documents]')
    if (!current) return Promise.resolve()
    return fetch(window.location.pathname, { credentials: 'same-origin' })
      .then(function (response) { return response.ok ? response.text() : null })
      .then(function (html) {
        if (!html) return
        var fresh = new DOMParser().parseFromString(html, 'text/html').querySelector('[data-documents]')
        if (fresh) current.replaceWith(document.importNode(fresh, true))
      })
      .catch(function () {})
  }

  function start (form, files) {
    if (!files.length) return
    var list = form.querySelector('[data-upload-list]')
    list.replaceChildren()
    form.dataset.busy = 'true'
    var queue = files.map(function (file) { return { file: file, view: row(form, list, file) } })
    var stored = 0
    function worker () {
      var next = queue.shift()
      if (!next) return Promise.resolve()
      return send(form, next.file, next.view).then(function (ok) {
        if (ok) stored += 1
        return worker()
      })
    }
    var workers = []
    for (var i = 0; i < Math.min(PARALLEL, files.length); i++) workers.push(worker())
    return Promise.all(workers).then(function () {
      var failed = list.querySelector('[data-state="error"]') !== null
      if (form.dataset.after === 'reload' && stored > 0 && !failed) {
        window.location.reload()
        return
      }
      return (stored > 0 ? refreshList() : Promise.resolve()).then(function () {
        form.dataset.busy = 'false'
        form.dataset.done = 'true'
      })
    })
  }

  function enhance (form) {
    var input = form.querySelector('input[type="file"]')
    if (!input || !window.FormData || !window.XMLHttpRequest) return
    form.classList.add('upload-js')
    input.required = false
    form.querySelectorAll('[data-js-only]').forEach(function (el) { el.hidden = false })
    input.addEventListener('change', function () {
      var files = Array.prototype.slice.call(input.files || [])
      input.value = ''
      start(form, files)
    })
    form.addEventListener('submit', function (event) {
      event.preventDefault()
      start(form, Array.prototype.slice.call(input.files || []))
    })
    if (!input.multiple) return
    // Files dropped anywhere on the page go to this folder.
    var depth = 0
    document.addEventListener('dragenter', function (event) {
      if (!event.dataTransfer || Array.prototype.indexOf.call(event.dataTransfer.types, 'Files') < 0) return
      depth += 1
      document.body.classList.add('dragging-files')
    })
    document.addEventListener('dragleave', function () {
      depth = Math.max(0, depth - 1)
      if (depth === 0) document.body.classList.remove('dragging-files')
    })
    document.addEventListener('dragover', function (event) {
      if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, 'Files') >= 0) {
        event.preventDefault()
        event.dataTransfer.dropEffect = 'copy'
      }
    })
    document.addEventListener('drop', function (event) {
      depth = 0
      document.body.classList.remove('dragging-files')
      if (!event.dataTransfer || !event.dataTransfer.files.length) return
      event.preventDefault()
      start(form, Array.prototype.slice.call(event.dataTransfer.files))
    })
  }

  document.querySelectorAll('form[data-upload]').forEach(enhance)
})()
