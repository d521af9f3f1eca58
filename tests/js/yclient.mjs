// A stock Yjs + y-websocket client for Plein's tests, driven over stdin/stdout (one JSON
// command per line in, one JSON event per line out), so pytest can play several editors.
//
//   node tests/js/yclient.mjs <wsBase> <documentId> [token] [origin]
// commands: {"op":"insert","text":"..."} {"op":"text"} {"op":"state"} {"op":"awareness","name":"Bob"}
//           {"op":"peers"} {"op":"close"}
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
const provider = new WebsocketProvider(base, documentId, doc, { params, WebSocketPolyfill: OriginWS, maxBackoffTime: 500 })

provider.on('status', ({ status }) => emit({ event: 'status', status }))
provider.on('sync', (synced) => emit({ event: 'sync', synced }))
provider.on('connection-close', (e) => emit({ event: 'close', code: e ? e.code : null }))
doc.on('update', (update, originOf) => {
  if (originOf === provider) emit({ event: 'remote-update', bytes: update.length })
})

function plainText () {
  const out = []
  fragment.toArray().forEach((node) => {
    if (node instanceof Y.XmlElement) out.push(node.toArray().map((t) => t.toString()).join(''))
    else out.push(node.toString())
  })
  return out.join('\n')
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const cmd = JSON.parse(line)
  if (cmd.op === 'insert') {
    // One paragraph per insert, as TipTap would produce for a typed line.
    const p = new Y.XmlElement('paragraph')
    p.insert(0, [new Y.XmlText(cmd.text)])
    fragment.insert(fragment.length, [p])
    emit({ event: 'inserted', text: cmd.text })
  } else if (cmd.op === 'text') {
    emit({ event: 'text', text: plainText() })
  } else if (cmd.op === 'awareness') {
    provider.awareness.setLocalStateField('user', { name: cmd.name })
    emit({ event: 'awareness-set' })
  } else if (cmd.op === 'peers') {
    const names = []
    provider.awareness.getStates().forEach((s, id) => {
      if (id !== doc.clientID && s.user) names.push(s.user.name)
    })
    emit({ event: 'peers', names: names.sort() })
  } else if (cmd.op === 'close') {
    provider.destroy()
    emit({ event: 'closed' })
    process.exit(0)
  }
})
emit({ event: 'started' })
