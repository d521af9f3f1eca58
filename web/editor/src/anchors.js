// Inline comments anchored to a text range of a note.
//
// An anchor is a pair of Yjs relative positions (start, end) made from the selection with the
// y-tiptap binding's own helpers, encoded with Y.encodeRelativePosition and base64. Relative
// positions follow concurrent edits by themselves; when the range collapses (its text was
// deleted) the thread is shown as detached and an editor marks it so on the server once.
// Highlights are ProseMirror inline decorations with a class (no inline styles: CSP).
import { Extension } from '@tiptap/core'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { Decoration, DecorationSet } from '@tiptap/pm/view'
import {
  absolutePositionToRelativePosition,
  relativePositionToAbsolutePosition,
  ySyncPluginKey
} from '@tiptap/y-tiptap'
import * as Y from 'yjs'

export const commentAnchorsKey = new PluginKey('commentAnchors')
export const ANCHORS_CHANGED = 'plein:discussion-refreshed'

function toBase64 (bytes) {
  let text = ''
  bytes.forEach((b) => { text += String.fromCharCode(b) })
  return window.btoa(text)
}

function fromBase64 (text) {
  const raw = window.atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const bytes = new Uint8Array(raw.length)
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i)
  return bytes
}

export const CommentAnchors = Extension.create({
  name: 'commentAnchors',
  addProseMirrorPlugins () {
    return [new Plugin({
      key: commentAnchorsKey,
      state: {
        init: () => DecorationSet.empty,
        apply (tr, set) {
          const fresh = tr.getMeta(commentAnchorsKey)
          if (fresh) return fresh
          return tr.docChanged ? set.map(tr.mapping, tr.doc) : set
        }
      },
      props: {
        decorations (state) { return commentAnchorsKey.getState(state) }
      }
    })]
  }
})

function binding (state) {
  const ystate = ySyncPluginKey.getState(state)
  if (!ystate || !ystate.binding || !ystate.doc || ystate.binding.mapping.size === 0) return null
  return ystate
}

// The selection as an anchor for the API, or null when nothing (or nothing mappable) is selected.
export function selectionAnchor (editor) {
  const { state } = editor
  const { from, to, empty } = state.selection
  const ystate = binding(state)
  if (empty || !ystate) return null
  const quote = state.doc.textBetween(from, to, ' ').slice(0, 1000)
  if (!quote.trim()) return null
  const mapping = ystate.binding.mapping
  const start = absolutePositionToRelativePosition(from, ystate.type, mapping)
  const end = absolutePositionToRelativePosition(to, ystate.type, mapping)
  return {
    start: toBase64(Y.encodeRelativePosition(start)),
    end: toBase64(Y.encodeRelativePosition(end)),
    quote
  }
}

function csrfToken () {
  const input = document.querySelector('input[name="csrf_token"]')
  return input ? input.value : ''
}

function api (method, url, body) {
  return fetch(url, {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body)
  }).then((response) => {
    if (!response.ok) throw new Error(`status ${response.status}`)
    return response.status === 204 ? null : response.json()
  })
}

// Wires the toolbar button, the anchored-comment form, the highlights and detaching.
export function wireComments (root, editor, provider) {
  const documentId = root.dataset.documentId
  const canWrite = root.dataset.readonly !== 'true'
  let anchors = [] // {id, start, end} with decoded relative positions
  const asked = new Set() // threads this page already marked detached
  let synced = false
  let scheduled = false

  function markPanel (detached) {
    const panel = document.querySelector('[data-discussion]')
    if (!panel) return
    anchors.forEach((a) => {
      const thread = document.getElementById(`thread-${a.id}`)
      if (thread) thread.classList.add('thread-anchored')
    })
    detached.forEach((id) => {
      const thread = document.getElementById(`thread-${id}`)
      if (!thread || thread.classList.contains('thread-detached')) return
      thread.classList.add('thread-detached')
      const head = thread.querySelector('.comment-head')
      if (head) {
        const badge = document.createElement('span')
        badge.className = 'badge badge-detached'
        badge.textContent = root.dataset.textDetached || 'detached'
        head.appendChild(badge)
      }
    })
  }

  function recompute () {
    scheduled = false
    if (editor.isDestroyed) return
    const { state } = editor
    const ystate = binding(state)
    if (!ystate) return
    const size = state.doc.content.size
    const decorations = []
    const detached = anchors.filter((a) => a.detached).map((a) => a.id)
    anchors.forEach((a) => {
      if (a.detached) return
      const from = relativePositionToAbsolutePosition(ystate.doc, ystate.type, a.start, ystate.binding.mapping)
      const to = relativePositionToAbsolutePosition(ystate.doc, ystate.type, a.end, ystate.binding.mapping)
      if (from === null || to === null) return
      if (from >= to) {
        // The text is gone: stop highlighting; an editor tells the server once.
        if (!synced) return
        detached.push(a.id)
        if (canWrite && !asked.has(a.id)) {
          asked.add(a.id)
          api('PATCH', `/api/v1/comments/${a.id}`, { detached: true }).catch(() => asked.delete(a.id))
        }
        return
      }
      decorations.push(Decoration.inline(Math.max(0, from), Math.min(size, to), {
        class: 'comment-anchor', 'data-comment-id': a.id
      }))
    })
    editor.view.dispatch(editor.state.tr
      .setMeta(commentAnchorsKey, DecorationSet.create(state.doc, decorations))
      .setMeta('addToHistory', false))
    markPanel(detached)
  }

  function schedule () {
    if (scheduled) return
    scheduled = true
    window.setTimeout(recompute, 0)
  }

  function load () {
    return api('GET', `/api/v1/documents/${documentId}/comments?limit=500`).then((page) => {
      anchors = page.comments.filter((c) => c.anchor && !c.deleted).map((c) => ({
        id: c.id,
        detached: c.detached,
        start: Y.decodeRelativePosition(fromBase64(c.anchor.start)),
        end: Y.decodeRelativePosition(fromBase64(c.anchor.end))
      }))
      root.dataset.anchors = String(anchors.length)
      schedule()
    }).catch(() => { /* the next refresh tries again */ })
  }

  editor.on('transaction', ({ transaction }) => { if (transaction.docChanged) schedule() })
  provider.doc.on('update', schedule)
  provider.on('sync', (isSynced) => { if (isSynced) { synced = true; schedule() } })
  document.addEventListener(ANCHORS_CHANGED, load)
  load()

  // Clicking a highlight brings its thread into view.
  const surface = root.querySelector('[data-editor-surface]')
  if (surface) {
    surface.addEventListener('click', (event) => {
      const mark = event.target.closest && event.target.closest('.comment-anchor')
      if (!mark) return
      const comment = document.getElementById(`comment-${mark.dataset.commentId}`)
      if (!comment) return
      comment.setAttribute('tabindex', '-1')
      comment.scrollIntoView({ block: 'center' })
      comment.focus({ preventScroll: true })
    })
  }

  // The toolbar button opens a small form; posting sends the anchored comment.
  const button = root.querySelector('[data-comment-selection]')
  const form = root.querySelector('[data-anchor-form]')
  if (!button || !form || !canWrite) return
  const box = form.querySelector('textarea')
  const quoteEl = form.querySelector('[data-anchor-quote]')
  let pending = null
  const refreshButton = () => { button.disabled = editor.state.selection.empty }
  editor.on('selectionUpdate', refreshButton)
  editor.on('transaction', refreshButton)
  refreshButton()
  button.addEventListener('click', (event) => {
    event.preventDefault()
    pending = selectionAnchor(editor)
    box.removeAttribute('aria-invalid')
    if (!pending) return
    quoteEl.textContent = pending.quote
    form.hidden = false
    box.focus()
  })
  form.querySelector('[data-anchor-cancel]').addEventListener('click', () => {
    form.hidden = true
    pending = null
  })
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (!pending || !box.value.trim()) return
    api('POST', `/api/v1/documents/${documentId}/comments`, { body: box.value, anchor: pending })
      .then(() => {
        form.hidden = true
        box.value = ''
        pending = null
        load()
      })
      .catch(() => { box.setAttribute('aria-invalid', 'true') })
  })
}
