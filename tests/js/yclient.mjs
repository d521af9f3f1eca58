// A stock Yjs + y-websocket client for Plein's tests, driven over stdin/stdout (one JSON
// command per line in, one JSON event per line out), so pytest can play several editors.
// tests/js_client.py wraps it.
//
//   node tests/js/yclient.mjs <wsBase> <documentId> [token] [origin]
//
// Every command may carry an "id"; the event answering it carries the same id as "re".
// Commands:
//   {"op":"insert","text":"..."}                 a new paragraph at the end (a typed line)
//   {"op":"type","para":0,"pos":3,"text":"..."}  text typed inside paragraph `para` at `pos`
//   {"op":"delete","para":0,"pos":0,"len":2}     delete inside paragraph `para`
//   {"op":"delete-para","para":0}                remove a whole block
//   {"op":"text"}                                -> {"event":"text","text":...} (blocks by \n)
//   {"op":"state-vector"}                        -> {"event":"state-vector","sv":base64}
//   {"op":"wait","contains":"..."|"absent":"..."|"equals":"...","ms":timeout}
//                                                -> {"event":"waited","ok":bool,"text":...}
//   {"op":"awareness","name":"Bob"}              set the local user (name) in awareness
//   {"op":"peers"}                               -> {"event":"peers","names":[...]} (others)
//   {"op":"stream","prefix":"A","interval":ms}   insert "<prefix>-<n>" lines until "stop"
//   {"op":"stop"}                                -> {"event":"stopped","count":n}
//   {"op":"seen","prefix":"A"}                   -> lines starting with "<prefix>-" that
//                                                   arrived from the server (a peer's)
//   {"op":"disconnect"} / {"op":"connect"}       the provider's own disconnect/connect
//   {"op":"close"}                               destroy the provider and exit
// Unsolicited events: started, status, sync, close (code), denied (auth message),
// remote-update, awareness (names of others, on every change).
import { createRequire } from 'node:module'
import readline from 'node:readline'

const require = createRequire(new URL('../../web/editor/package.json', import.meta.url))
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WS = require('ws')

const [base, documentId, token, origin] = process.argv.slice(2)
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')

// A WebSocket class that sends our Origin (browsers always do; Node's ws only when asked).
class OriginWS extends WS {
  constructor (url, protocols) {
    super(url, protocols, origin ? { origin } : {})
  }
}

const doc = new Y.Doc()
const fragment = doc.getXmlFragment('default')
const params = token ? { token } : {}
const provider = new WebsocketProvider(base, documentId, doc, {
  params, WebSocketPolyfill: OriginWS, maxBackoffTime: 300, disableBc: true
})

// The stock provider only console.warn()s an auth message; report it instead.
provider.messageHandlers[2] = (_encoder, decoder) => {
  const kind = decoder.arr[decoder.pos++]
  const len = readVarUint(decoder)
  const reason = new TextDecoder().decode(decoder.arr.subarray(decoder.pos, decoder.pos + len))
  decoder.pos += len
  emit({ event: 'denied', kind, reason })
}

function readVarUint (decoder) {
  let num = 0
  let mult = 1
  for (;;) {
    const r = decoder.arr[decoder.pos++]
    num += (r & 0x7f) * mult
    mult *= 128
    if (r < 0x80) return num
  }
}

provider.on('status', ({ status }) => emit({ event: 'status', status }))
provider.on('sync', (synced) => emit({ event: 'sync', synced }))
provider.on('connection-close', (e) => emit({ event: 'close', code: e ? e.code : null }))

const peerNames = () => {
  const names = []
  provider.awareness.getStates().forEach((s, id) => {
    if (id !== doc.clientID && s.user) names.push(s.user.name)
  })
  return names.sort()
}
provider.awareness.on('change', () => emit({ event: 'awareness', names: peerNames() }))

function blockText (node) {
  if (node instanceof Y.XmlText) {
    return node.toDelta().map((d) => (typeof d.insert === 'string' ? d.insert : '')).join('')
  }
  if (node instanceof Y.XmlElement) {
    const children = node.toArray()
    // A container (list, quote) holds blocks: one line each; a paragraph holds text runs.
    const nested = children.some((c) => c instanceof Y.XmlElement && c.nodeName !== 'hardBreak')
    return children.map(blockText).join(nested ? '\n' : '')
  }
  return ''
}

function plainText () {
  return fragment.toArray().map(blockText).join('\n')
}

// Lines that reached us from the server (the y-websocket provider is the origin).
const seen = new Set()
fragment.observe((event, tr) => {
  if (tr.origin !== provider) return
  event.changes.added.forEach((item) => {
    item.content.getContent().forEach((node) => seen.add(blockText(node)))
  })
})

const waiters = []
function checkWaiters () {
  for (let i = waiters.length - 1; i >= 0; i--) {
    const w = waiters[i]
    const text = plainText()
    if (w.test(text)) {
      clearTimeout(w.timer)
      waiters.splice(i, 1)
      emit({ event: 'waited', re: w.id, ok: true, text })
    }
  }
}
doc.on('update', (update, originOf) => {
  if (originOf === provider) emit({ event: 'remote-update', bytes: update.length })
  if (waiters.length) checkWaiters()
})

function paragraphText (index) {
  const p = fragment.get(index)
  if (!(p instanceof Y.XmlElement)) throw new Error(`no block ${index}`)
  let t = p.toArray().find((n) => n instanceof Y.XmlText)
  if (!t) {
    t = new Y.XmlText()
    p.insert(p.length, [t])
  }
  return t
}

let stream = null

const handlers = {
  insert (cmd) {
    // One paragraph per insert, as TipTap would produce for a typed line.
    const p = new Y.XmlElement('paragraph')
    p.insert(0, [new Y.XmlText(cmd.text)])
    fragment.insert(fragment.length, [p])
    return { event: 'inserted', text: cmd.text }
  },
  type (cmd) {
    doc.transact(() => paragraphText(cmd.para).insert(cmd.pos, cmd.text))
    return { event: 'typed' }
  },
  delete (cmd) {
    doc.transact(() => paragraphText(cmd.para).delete(cmd.pos, cmd.len))
    return { event: 'deleted' }
  },
  'delete-para' (cmd) {
    fragment.delete(cmd.para, 1)
    return { event: 'deleted' }
  },
  text () {
    return { event: 'text', text: plainText(), blocks: fragment.length }
  },
  'state-vector' () {
    return { event: 'state-vector', sv: Buffer.from(Y.encodeStateVector(doc)).toString('base64') }
  },
  state () {
    return { event: 'state', connected: provider.wsconnected, synced: provider.synced }
  },
  wait (cmd) {
    const test = cmd.contains !== undefined
      ? (t) => t.includes(cmd.contains)
      : cmd.absent !== undefined
        ? (t) => !t.includes(cmd.absent)
        : (t) => t === cmd.equals
    const text = plainText()
    if (test(text)) return { event: 'waited', ok: true, text }
    const w = { id: cmd.id, test }
    w.timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(w), 1)
      emit({ event: 'waited', re: cmd.id, ok: false, text: plainText() })
    }, cmd.ms ?? 5000)
    waiters.push(w)
    return null
  },
  awareness (cmd) {
    provider.awareness.setLocalStateField('user', { name: cmd.name })
    return { event: 'awareness-set' }
  },
  peers () {
    return { event: 'peers', names: peerNames() }
  },
  stream (cmd) {
    if (stream) clearInterval(stream.timer)
    const s = { count: stream ? stream.count : 0 }
    s.timer = setInterval(() => {
      s.count += 1
      const p = new Y.XmlElement('paragraph')
      p.insert(0, [new Y.XmlText(`${cmd.prefix}-${s.count}`)])
      fragment.insert(fragment.length, [p])
    }, cmd.interval ?? 5)
    stream = s
    return { event: 'streaming' }
  },
  stop () {
    if (stream) clearInterval(stream.timer)
    return { event: 'stopped', count: stream ? stream.count : 0 }
  },
  seen (cmd) {
    const prefix = `${cmd.prefix}-`
    return { event: 'seen', lines: [...seen].filter((l) => l.startsWith(prefix)) }
  },
  disconnect () {
    provider.disconnect()
    return { event: 'disconnected' }
  },
  connect () {
    provider.connect()
    return { event: 'connecting' }
  },
  close () {
    provider.destroy()
    emit({ event: 'closed' })
    process.exit(0)
  }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const cmd = JSON.parse(line)
  const handler = handlers[cmd.op]
  let out
  try {
    out = handler ? handler(cmd) : { event: 'error', error: `unknown op ${cmd.op}` }
  } catch (err) {
    out = { event: 'error', error: String(err) }
  }
  if (out) emit({ ...out, re: cmd.id })
})
rl.on('close', () => {
  provider.destroy()
  process.exit(0)
})
emit({ event: 'started' })
