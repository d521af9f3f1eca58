// Soak load for bench/sync_soak.py: stock Yjs + y-websocket clients editing one note for as long
// as the driver says, through server restarts (the provider reconnects by itself).
//
//   node bench/js/soak.mjs '<json config>'      config: { url, room, clients, params, rate,
//                                                         awarenessEvery, workers }
// Commands on stdin, one JSON line each; every answer is one JSON line on stdout:
//   {"op": "acked"}  -> {"acked": {clientID: clock}}  the highest Yjs clock of each client that
//                       some *other* client has received from the server.  Plein broadcasts an
//                       update only once it is durable, so all of it must be on disk.
//   {"op": "stop"}   -> {"acked": ..., "resyncs": [ms timestamps of every re-sync after a
//                       disconnect], ...}: editing stops, the clients close
// A client's updates reach the server in clock order and are integrated in that order (an
// update with missing dependencies is not applied), so "clock c was received by someone"
// covers every clock of that client below c too.
import { fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const require = createRequire(new URL('../../web/editor/package.json', import.meta.url))
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WS = require('ws')

const now = () => performance.timeOrigin + performance.now()

function worker () {
  const clients = []
  const acked = new Map() // clientID -> highest clock (exclusive) seen from the server
  const resyncs = []
  let edits = 0
  let closes = 0
  let cfg = null

  class PlainWS extends WS {
    constructor (url, protocols) { super(url, protocols, { perMessageDeflate: false }) }
  }

  function connect (id) {
    const doc = new Y.Doc()
    const text = doc.getText('t')
    const provider = new WebsocketProvider(cfg.url, cfg.room, doc, {
      params: cfg.params || {}, WebSocketPolyfill: PlainWS, disableBc: true, maxBackoffTime: 1000
    })
    const c = { id, doc, text, provider, seq: 0, synced: false, lostAt: null }
    provider.on('sync', (s) => {
      if (!s) return
      if (c.lostAt !== null) resyncs.push(now())
      c.lostAt = null
      c.synced = true
    })
    provider.on('connection-close', () => {
      closes++
      if (c.lostAt === null) c.lostAt = now()
    })
    doc.on('afterTransaction', (tr) => {
      if (tr.origin !== provider) return
      // Items integrated from the server: their authors' clocks up to here are durable.
      for (const [client, clock] of tr.afterState) {
        if (client === doc.clientID) continue
        if ((acked.get(client) || 0) < clock) acked.set(client, clock)
      }
    })
    provider.awareness.setLocalStateField('user', { name: `soak-${id}` })
    return c
  }

  function tick (c) {
    if (c.stopped) return
    if (c.provider.wsconnected) {
      c.seq++
      const pos = Math.floor(Math.random() * (c.text.length + 1))
      c.text.insert(pos, `${c.id}#${c.seq};`)
      edits++
      if (cfg.awarenessEvery > 0 && c.seq % cfg.awarenessEvery === 0) {
        c.provider.awareness.setLocalStateField('cursor', { anchor: pos, head: pos + 1 })
      }
    }
    const period = 1000 / cfg.rate
    c.timer = setTimeout(() => tick(c), period * (0.5 + Math.random()))
  }

  process.on('message', async (msg) => {
    if (msg.op === 'start') {
      cfg = msg.cfg
      for (const id of msg.ids) {
        const c = connect(id)
        clients.push(c)
        await new Promise((resolve) => setTimeout(resolve, 2))
      }
      const deadline = Date.now() + 60000
      while (clients.some((c) => !c.synced) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      for (const c of clients) tick(c)
      process.send({ op: 'started', synced: clients.filter((c) => c.synced).length })
    } else if (msg.op === 'acked') {
      process.send({ op: 'acked', acked: Object.fromEntries(acked) })
    } else if (msg.op === 'stop') {
      for (const c of clients) { c.stopped = true; clearTimeout(c.timer) }
      process.send({
        op: 'stopped',
        acked: Object.fromEntries(acked),
        resyncs,
        edits,
        closes,
        cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6
      })
      for (const c of clients) c.provider.destroy()
      setTimeout(() => process.exit(0), 50)
    }
  })
}

function request (child, send, reply, extra = {}) {
  return new Promise((resolve) => {
    const onMessage = (msg) => {
      if (msg.op === reply) {
        child.off('message', onMessage)
        resolve(msg)
      }
    }
    child.on('message', onMessage)
    child.send({ op: send, ...extra })
  })
}

async function main () {
  const cfg = Object.assign({ params: {}, clients: 300, rate: 10, awarenessEvery: 2, workers: 2 },
    JSON.parse(process.argv[2]))
  const children = []
  for (let w = 0; w < cfg.workers; w++) {
    children.push(fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, SOAK_WORKER: '1' } }))
  }
  const ids = [...Array(cfg.clients).keys()]
  const started = await Promise.all(children.map((child, w) =>
    request(child, 'start', 'started', { cfg, ids: ids.filter((i) => i % cfg.workers === w) })))
  const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
  out({ synced: started.reduce((a, m) => a + m.synced, 0) })
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    const cmd = JSON.parse(line)
    if (cmd.op === 'acked') {
      const parts = await Promise.all(children.map((child) => request(child, 'acked', 'acked')))
      const acked = {}
      for (const p of parts) {
        for (const [client, clock] of Object.entries(p.acked)) {
          acked[client] = Math.max(acked[client] || 0, clock)
        }
      }
      out({ acked })
    } else if (cmd.op === 'stop') {
      const parts = await Promise.all(children.map((child) => request(child, 'stop', 'stopped')))
      const acked = {}
      for (const p of parts) {
        for (const [client, clock] of Object.entries(p.acked)) {
          acked[client] = Math.max(acked[client] || 0, clock)
        }
      }
      out({
        acked,
        resyncs: parts.flatMap((p) => p.resyncs),
        edits: parts.reduce((a, p) => a + p.edits, 0),
        closes: parts.reduce((a, p) => a + p.closes, 0),
        cpuSeconds: parts.reduce((a, p) => a + p.cpuSeconds, 0)
      })
      rl.close()
      setTimeout(() => process.exit(0), 300)
      return
    }
  }
}

if (process.env.SOAK_WORKER) worker()
else main()
