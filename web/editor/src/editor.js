// Plein's note editor: TipTap 3 over a Yjs document that a stock y-websocket provider keeps in
// sync with the server (/sync/{documentId}). Content lives in the XmlFragment "default".
//
// The page is served under a strict CSP (no inline style attributes), so carets and remote
// selections get colour *classes* from a fixed palette instead of inline styles.
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import { TableKit } from '@tiptap/extension-table'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { CommentAnchors, wireComments } from './anchors.js'

const PALETTE_SIZE = 8

function colorClass (index) {
  const n = Number.isInteger(index) ? index : 0
  return `collab-color-${((n % PALETTE_SIZE) + PALETTE_SIZE) % PALETTE_SIZE}`
}

function renderCaret (user) {
  const caret = document.createElement('span')
  caret.classList.add('collaboration-carets__caret', colorClass(user.colorIndex))
  const label = document.createElement('div')
  label.classList.add('collaboration-carets__label', colorClass(user.colorIndex))
  label.textContent = user.name || '?'
  caret.appendChild(label)
  return caret
}

function renderSelection (user) {
  return { class: `collaboration-carets__selection ${colorClass(user.colorIndex)}` }
}

function syncUrl (root) {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${scheme}//${window.location.host}${root.dataset.syncPath || '/sync'}`
}

const STATE_TEXT = {
  connected: 'data-text-online',
  connecting: 'data-text-reconnecting',
  disconnected: 'data-text-offline'
}

function showState (root, status) {
  const el = root.querySelector('[data-connection-state]')
  if (!el) return
  const state = navigator.onLine === false ? 'disconnected' : status
  el.dataset.state = state
  el.textContent = el.getAttribute(STATE_TEXT[state]) || state
}

function showPresence (root, provider) {
  const list = root.querySelector('[data-presence]')
  if (!list) return
  const people = []
  provider.awareness.getStates().forEach((state, clientId) => {
    if (state && state.user) people.push({ clientId, ...state.user })
  })
  list.replaceChildren(...people.map((person) => {
    const li = document.createElement('li')
    li.classList.add('presence__person', colorClass(person.colorIndex))
    li.textContent = person.name + (person.clientId === provider.awareness.clientID ? ' ✓' : '')
    li.dataset.clientId = String(person.clientId)
    return li
  }))
}

const COMMANDS = {
  bold: (c) => c.toggleBold(),
  italic: (c) => c.toggleItalic(),
  strike: (c) => c.toggleStrike(),
  h1: (c) => c.toggleHeading({ level: 1 }),
  h2: (c) => c.toggleHeading({ level: 2 }),
  h3: (c) => c.toggleHeading({ level: 3 }),
  paragraph: (c) => c.setParagraph(),
  bulletList: (c) => c.toggleBulletList(),
  orderedList: (c) => c.toggleOrderedList(),
  blockquote: (c) => c.toggleBlockquote(),
  table: (c) => c.insertTable({ rows: 3, cols: 3, withHeaderRow: true }),
  addRow: (c) => c.addRowAfter(),
  addColumn: (c) => c.addColumnAfter(),
  deleteTable: (c) => c.deleteTable(),
  undo: (c) => c.undo(),
  redo: (c) => c.redo()
}

function wireToolbar (root, editor) {
  root.querySelectorAll('[data-command]').forEach((button) => {
    button.addEventListener('click', (event) => {
      event.preventDefault()
      const name = button.dataset.command
      if (name === 'link') {
        const previous = editor.getAttributes('link').href || ''
        const href = window.prompt(button.dataset.prompt || 'URL', previous)
        if (href === null) return
        const chain = editor.chain().focus().extendMarkRange('link')
        if (href === '') chain.unsetLink().run()
        else if (/^(https?:|mailto:)/i.test(href)) chain.setLink({ href }).run()
        return
      }
      const command = COMMANDS[name]
      if (command) command(editor.chain().focus()).run()
    })
  })
  const refresh = () => {
    root.querySelectorAll('[data-command]').forEach((button) => {
      const name = button.dataset.command
      const active = {
        bold: editor.isActive('bold'),
        italic: editor.isActive('italic'),
        strike: editor.isActive('strike'),
        h1: editor.isActive('heading', { level: 1 }),
        h2: editor.isActive('heading', { level: 2 }),
        h3: editor.isActive('heading', { level: 3 }),
        bulletList: editor.isActive('bulletList'),
        orderedList: editor.isActive('orderedList'),
        blockquote: editor.isActive('blockquote'),
        link: editor.isActive('link')
      }[name]
      if (active !== undefined) button.setAttribute('aria-pressed', active ? 'true' : 'false')
    })
  }
  editor.on('selectionUpdate', refresh)
  editor.on('transaction', refresh)
}

export function mountEditor (root) {
  const documentId = root.dataset.documentId
  const readOnly = root.dataset.readonly === 'true'
  const user = {
    name: root.dataset.userName || 'Anonymous',
    colorIndex: Number(root.dataset.userColor || 0)
  }
  const ydoc = new Y.Doc()
  const params = root.dataset.token ? { token: root.dataset.token } : {}
  const provider = new WebsocketProvider(syncUrl(root), documentId, ydoc, { params })
  provider.awareness.setLocalStateField('user', user)

  const editor = new Editor({
    element: root.querySelector('[data-editor-surface]'),
    editable: !readOnly,
    extensions: [
      // The collaboration extension brings its own (Yjs) undo/redo: the editor's must be off.
      StarterKit.configure({ undoRedo: false, link: { openOnClick: false, protocols: ['mailto'], autolink: true } }),
      TableKit.configure({ table: { resizable: false } }),
      Collaboration.configure({ document: ydoc, field: 'default' }),
      CollaborationCaret.configure({ provider, user, render: renderCaret, selectionRender: renderSelection }),
      CommentAnchors
    ],
    editorProps: {
      attributes: {
        class: 'note-body',
        'aria-label': root.dataset.label || 'Note',
        'aria-readonly': readOnly ? 'true' : 'false'
      }
    }
  })

  // The server-rendered copy stays until the live document has arrived; then the editor
  // takes its place (and the toolbar appears), so a page without a connection still reads.
  const toolbar = root.querySelector('[data-editor-toolbar]')
  if (toolbar && !readOnly) toolbar.hidden = false
  provider.on('sync', (synced) => {
    if (!synced) return
    const surface = root.querySelector('[data-editor-surface]')
    const fallback = root.querySelector('[data-note-fallback]')
    if (surface) surface.hidden = false
    if (fallback) fallback.hidden = true
    root.dataset.synced = 'true'
  })
  provider.on('status', ({ status }) => showState(root, status))
  window.addEventListener('online', () => showState(root, provider.wsconnected ? 'connected' : 'connecting'))
  window.addEventListener('offline', () => showState(root, 'disconnected'))
  provider.awareness.on('change', () => showPresence(root, provider))
  showState(root, 'connecting')
  showPresence(root, provider)
  if (!readOnly) wireToolbar(root, editor)
  wireComments(root, editor, provider)

  // Exposed for the browser tests and for debugging from the console.
  root.plein = { editor, provider, ydoc }
  return root.plein
}

document.querySelectorAll('[data-note-editor]').forEach((root) => mountEditor(root))
