// Live co-editing load generator: stock Yjs + y-websocket clients, the same against Plein and
// against the reference y-websocket server.  Driven by bench/sync.py; prints one JSON line.
//
//   node bench/js/loadgen.mjs '<json config>'
//   config: { url, docs: [room names], clientsPerDoc, params: {token?}, durationMs,
//             editsPerSecond, awarenessEvery, workers, connectTimeoutMs, drainTimeoutMs,
//             deflate }
// deflate (default true): offer permessage-deflate as browsers do; false = plain frames.
//
// Every client inserts "<sendTime>@<client>#<seq>;" at a random spot of the Y.Text "t"
// ~editsPerSecond times a second, and updates its awareness (a cursor) every
// `awarenessEvery`-th edit.  Every client measures, for each remote insert it observes, the
// fan-out latency now - sendTime (same machine, same clock).  Clients are spread over
// `workers` processes so one Node event loop is not the bottleneck.
import { fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const require = createRequire(new URL('../../web/editor/package.json', import.meta.url))
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WS = require('ws')

const BUCKET_MS = 0.1
const BUCKETS = 300000 // 30 s
const now = () => performance.timeOrigin + performance.now()

// ---------------------------------------------------------------------------------- worker

function worker () {
  let clients = []
  let cfg = null
  const hist = new Uint32Array(BUCKETS)
  let delivered = 0
  let deliveredInWindow = 0
  let sent = 0
  let overflow = 0
  let windowEnd = Infinity
  let closes = 0
  const closeCodes = {}
  const TOKEN = /([0-9.]+)@[0-9]+#[0-9]+;/g

  function record (text) {
    const t = now()
    TOKEN.lastIndex = 0
    let m
    while ((m = TOKEN.exec(text)) !== null) {
      const ms = t - parseFloat(m[1])
      const b = Math.min(BUCKETS - 1, Math.max(0, Math.floor(ms / BUCKET_MS)))
      if (b === BUCKETS - 1) overflow++
      hist[b]++
      delivered++
      if (t <= windowEnd) deliveredInWindow++
    }
  }

  // Browsers always offer permessage-deflate; Node's ws does too unless told not to.
  class BenchWS extends WS {
    constructor (url, protocols) {
      super(url, protocols, { perMessageDeflate: cfg.deflate !== false })
    }
  }

  function connect (spec) {
    const doc = new Y.Doc()
    const text = doc.getText('t')
    const provider = new WebsocketProvider(cfg.url, spec.room, doc, {
      params: cfg.params || {}, WebSocketPolyfill: BenchWS, disableBc: true, maxBackoffTime: 1000
    })
    const c = { doc, text, provider, room: spec.room, id: spec.id, seq: 0, synced: false }
    provider.on('sync', (s) => { if (s) c.synced = true })
    provider.on('connection-close', (e) => {
      closes++
      const code = e ? e.code : 'local'
      closeCodes[code] = (closeCodes[code] || 0) + 1
    })
    text.observe((event, tr) => {
      if (tr.origin !== provider || !c.measuring) return
      for (const op of event.delta) {
        if (typeof op.insert === 'string') record(op.insert)
      }
    })
    return c
  }

  function edit (c) {
    const ts = now().toFixed(3)
    c.seq++
    const pos = Math.floor(Math.random() * (c.text.length + 1))
    c.text.insert(pos, `${ts}@${c.id}#${c.seq};`)
    sent++
    if (cfg.awarenessEvery > 0 && c.seq % cfg.awarenessEvery === 0) {
      c.provider.awareness.setLocalStateField('cursor', { anchor: pos, head: pos + 1 })
    }
  }

  process.on('message', async (msg) => {
    if (msg.op === 'connect') {
      cfg = msg.cfg
      for (const spec of msg.clients) {
        const c = connect(spec)
        c.provider.awareness.setLocalStateField('user', { name: `bench-${spec.id}` })
        clients.push(c)
        // A small stagger, like people opening a page, not a thundering herd.
        await new Promise((resolve) => setTimeout(resolve, 2))
      }
      const deadline = Date.now() + cfg.connectTimeoutMs
      while (clients.some((c) => !c.synced) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      process.send({ op: 'connected', synced: clients.filter((c) => c.synced).length })
    } else if (msg.op === 'run') {
      windowEnd = msg.end
      const period = 1000 / cfg.editsPerSecond
      for (const c of clients) {
        c.measuring = true
        // Each client ticks on its own timer with a random phase.
        const start = Math.random() * period
        c.timer = setTimeout(function tick () {
          if (now() >= msg.end) return
          edit(c)
          c.timer = setTimeout(tick, period * (0.5 + Math.random()))
        }, start)
      }
      setTimeout(() => process.send({ op: 'ran' }), Math.max(0, msg.end - now()) + 5)
    } else if (msg.op === 'digest') {
      const docs = {}
      for (const c of clients) {
        const s = c.text.toString()
        const h = createHash('sha256').update(s).digest('hex').slice(0, 16)
        ;(docs[c.room] = docs[c.room] || []).push(`${s.length}:${h}`)
      }
      process.send({ op: 'digest', docs })
    } else if (msg.op === 'report') {
      process.send({
        op: 'report',
        hist: Array.from(hist),
        delivered,
        deliveredInWindow,
        sent,
        overflow,
        closes,
        closeCodes,
        cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6
      })
    } else if (msg.op === 'exit') {
      for (const c of clients) c.provider.destroy()
      clients = []
      setTimeout(() => process.exit(0), 50)
    }
  })
}

// ---------------------------------------------------------------------------------- main

function request (child, op, extra = {}) {
  return new Promise((resolve) => {
    const onMessage = (msg) => {
      if (msg.op === op.reply) {
        child.off('message', onMessage)
        resolve(msg)
      }
    }
    child.on('message', onMessage)
    child.send({ op: op.send, ...extra })
  })
}

function percentile (hist, total, p) {
  if (total === 0) return null
  const rank = Math.ceil(total * p)
  let acc = 0
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i]
    if (acc >= rank) return (i + 0.5) * BUCKET_MS
  }
  return null
}

async function main () {
  const cfg = Object.assign({
    params: {},
    durationMs: 10000,
    editsPerSecond: 10,
    awarenessEvery: 2,
    workers: 2,
    connectTimeoutMs: 60000,
    drainTimeoutMs: 20000,
    deflate: true
  }, JSON.parse(process.argv[2]))
  const specs = []
  let id = 0
  for (const room of cfg.docs) {
    for (let i = 0; i < cfg.clientsPerDoc; i++) specs.push({ room, id: id++ })
  }
  const nWorkers = Math.max(1, Math.min(cfg.workers, specs.length))
  const children = []
  for (let w = 0; w < nWorkers; w++) {
    children.push(fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, LOADGEN_WORKER: '1' } }))
  }
  const t0 = Date.now()
  const connected = await Promise.all(children.map((child, w) =>
    request(child, { send: 'connect', reply: 'connected' },
      { cfg, clients: specs.filter((_, i) => i % nWorkers === w) })))
  const synced = connected.reduce((a, m) => a + m.synced, 0)
  const connectSeconds = (Date.now() - t0) / 1000
  const start = now() + 200
  const end = start + cfg.durationMs
  await Promise.all(children.map((child) =>
    request(child, { send: 'run', reply: 'ran' }, { start, end })))
  // Drain: until every document's replicas are equal, or the deadline.
  const drainStart = now()
  let converged = false
  let digests = {}
  while (true) {
    digests = {}
    const parts = await Promise.all(children.map((child) =>
      request(child, { send: 'digest', reply: 'digest' })))
    for (const part of parts) {
      for (const [room, list] of Object.entries(part.docs)) {
        (digests[room] = digests[room] || []).push(...list)
      }
    }
    converged = Object.values(digests).every((list) => list.every((d) => d === list[0]))
    if (converged || now() - drainStart > cfg.drainTimeoutMs) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const drainSeconds = (now() - drainStart) / 1000
  const reports = await Promise.all(children.map((child) =>
    request(child, { send: 'report', reply: 'report' })))
  const hist = new Array(BUCKETS).fill(0)
  let delivered = 0
  let deliveredInWindow = 0
  let sent = 0
  let overflow = 0
  let closes = 0
  let loadgenCpuSeconds = 0
  const closeCodes = {}
  for (const r of reports) {
    loadgenCpuSeconds += r.cpuSeconds
    for (const [code, n] of Object.entries(r.closeCodes)) closeCodes[code] = (closeCodes[code] || 0) + n
    for (let i = 0; i < BUCKETS; i++) hist[i] += r.hist[i]
    delivered += r.delivered
    deliveredInWindow += r.deliveredInWindow
    sent += r.sent
    overflow += r.overflow
    closes += r.closes
  }
  for (const child of children) child.send({ op: 'exit' })
  const expected = sent * (cfg.clientsPerDoc - 1)
  const result = {
    clients: specs.length,
    docs: cfg.docs.length,
    synced,
    connectSeconds,
    durationSeconds: cfg.durationMs / 1000,
    sent,
    delivered,
    expectedDeliveries: expected,
    deliveryRatio: expected ? delivered / expected : 1,
    deliveredPerSecond: deliveredInWindow / (cfg.durationMs / 1000),
    latencyMs: {
      p50: percentile(hist, delivered, 0.5),
      p99: percentile(hist, delivered, 0.99),
      max: percentile(hist, delivered, 1.0)
    },
    overflow,
    closes,
    closeCodes,
    converged,
    drainSeconds,
    loadgenCpuSeconds,
    docLengths: Object.fromEntries(Object.entries(digests).map(([room, list]) =>
      [room, [...new Set(list)].length === 1 ? list[0].split(':')[0] : list]))
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  setTimeout(() => process.exit(0), 200)
}

if (process.env.LOADGEN_WORKER) worker()
else main()
