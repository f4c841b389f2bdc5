// A three-node Ensemble cluster on loopback for the tests of issue 8: one
// MongoDB wire server (nx-27017, or the test command's one), three `ensemble`
// processes sharing one database, and HAProxy configured from
// deploy/haproxy/haproxy.cfg with the three nodes as backends. Every child is
// killed when the cluster stops, and also when the Node process exits.
import { spawn, spawnSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const ROOT = new URL('../../', import.meta.url).pathname
export const BIN = process.env.ENSEMBLE_BIN ?? join(ROOT, 'target/debug/ensemble')
const NX = process.env.ENSEMBLE_TEST_NX_BIN ?? join(ROOT, '.venv-mongo/bin/nx-27017')
const HAPROXY = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy'

// Every child process, so an exit handler can kill what a failure left behind.
const children = new Set()
process.on('exit', () => {
  for (const c of children) {
    try { c.kill('SIGKILL') } catch {}
  }
})

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `cond` (sync or async) every 20 ms until truthy, or throws after `ms`. */
export async function until (cond, ms, what) {
  const start = Date.now()
  for (;;) {
    const v = await cond()
    if (v) return v
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(20)
  }
}

export async function freePort () {
  const srv = createServer()
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address()
  await new Promise((resolve) => srv.close(resolve))
  return port
}

function tcpOpen (port) {
  return new Promise((resolve) => {
    const s = tcpConnect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

function track (child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

function exited (child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', resolve))
}

export class Cluster {
  constructor () {
    this.dir = mkdtempSync(join(tmpdir(), 'ensemble-cluster-'))
    this.nodes = [] // { id, port, base, child, log }
    this.log = (msg) => appendFileSync(join(this.dir, 'test.log'), `${new Date().toISOString()} ${msg}\n`)
  }

  async start () {
    // The store.
    let uri = process.env.ENSEMBLE_TEST_MONGODB_URI
    if (!uri) {
      const port = await freePort()
      this.nx = track(spawn(NX, ['--db', 'memory', '-p', String(port), '--pid-file', join(this.dir, 'nx.pid'), '--log-file', join(this.dir, 'nx.log')], { stdio: 'ignore' }))
      await until(() => tcpOpen(port), 15000, 'nx-27017 to listen')
      uri = `mongodb://127.0.0.1:${port}`
    }
    this.mongoUri = `${uri.replace(/\/$/, '')}/cluster_${Math.random().toString(36).slice(2)}`
    // Three nodes.
    for (let i = 1; i <= 3; i++) this.nodes.push({ id: `node-${i}`, port: await freePort() })
    await Promise.all(this.nodes.map((n) => this.startNode(n)))
    // HAProxy.
    this.port = await freePort()
    this.statsPort = await freePort()
    this.base = `http://127.0.0.1:${this.port}`
    this.ws = `ws://127.0.0.1:${this.port}/ws`
    const cfg = join(this.dir, 'haproxy.cfg')
    writeFileSync(cfg, haproxyConfig(this.port, this.statsPort, this.nodes))
    const check = spawnSync(HAPROXY, ['-c', '-f', cfg], { encoding: 'utf8' })
    if (check.status !== 0) throw new Error(`haproxy -c failed:\n${check.stdout}${check.stderr}`)
    const hlog = join(this.dir, 'haproxy.log')
    this.haproxy = track(spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] }))
    this.haproxy.stdout.on('data', (d) => appendFileSync(hlog, d))
    this.haproxy.stderr.on('data', (d) => appendFileSync(hlog, d))
    await until(async () => (await this.haproxyUp()).length === 3, 20000, 'HAProxy to see three nodes up')
  }

  node (id) { return this.nodes.find((n) => n.id === id) }

  async startNode (n) {
    n.base = `http://127.0.0.1:${n.port}`
    n.log = join(this.dir, `${n.id}.log`)
    appendFileSync(n.log, `---- start ${new Date().toISOString()}\n`)
    const args = [
      '--bind', `127.0.0.1:${n.port}`,
      '--data-dir', join(this.dir, `${n.id}-data`),
      '--mongodb-uri', this.mongoUri,
      '--node-id', n.id,
      '--lease-ttl-secs', '3',
      '--trust-forwarded-for',
      '--run-timeout-secs', '30',
      '--static-dir', join(this.dir, 'no-static')
    ]
    const child = track(spawn(BIN, args, {
      env: { PATH: process.env.PATH, ENSEMBLE_LOG: process.env.ENSEMBLE_LOG ?? 'info' },
      stdio: ['ignore', 'pipe', 'pipe']
    }))
    child.stdout.on('data', (d) => appendFileSync(n.log, d))
    child.stderr.on('data', (d) => appendFileSync(n.log, d))
    n.child = child
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`${n.id} exited with ${child.exitCode}; see ${n.log}`)
      const r = await fetch(n.base + '/readyz').catch(() => null)
      if (!r || r.status !== 200) return false
      const body = await r.json()
      if (body.node !== n.id) throw new Error(`${n.id}: /readyz says node ${body.node}`)
      n.ready = body
      return true
    }, 30000, `${n.id} /readyz 200`)
  }

  /** kill -9 */
  async kill (n) {
    this.log(`kill -9 ${n.id}`)
    n.child.kill('SIGKILL')
    await exited(n.child)
  }

  /** SIGTERM and wait for a clean exit. */
  async terminate (n) {
    this.log(`SIGTERM ${n.id}`)
    n.child.kill('SIGTERM')
    const start = Date.now()
    await exited(n.child)
    return { code: n.child.exitCode, ms: Date.now() - start }
  }

  /** Names of the servers HAProxy considers UP. */
  async haproxyUp () {
    const r = await fetch(`http://127.0.0.1:${this.statsPort}/stats;csv`).catch(() => null)
    if (!r || r.status !== 200) return []
    const lines = (await r.text()).split('\n')
    const head = lines[0].replace(/^# /, '').split(',')
    const sv = head.indexOf('svname'); const st = head.indexOf('status'); const px = head.indexOf('pxname')
    return lines.slice(1).map((l) => l.split(','))
      .filter((f) => f[px] === 'ensemble' && f[sv] !== 'BACKEND' && f[sv] !== 'FRONTEND' && f[st] === 'UP')
      .map((f) => f[sv])
  }

  async stop () {
    for (const c of [...children]) {
      try { c.kill('SIGKILL') } catch {}
      await exited(c)
    }
  }

  cleanup () { rmSync(this.dir, { recursive: true, force: true }) }
}

/**
 * deploy/haproxy/haproxy.cfg with the three local nodes in place of the
 * Kubernetes server-template (and without its DNS resolvers), bound to a
 * loopback port, plus a stats listener the test polls for server states.
 * The frontend, the routing rules and the health-check settings are the file's own.
 */
export function haproxyConfig (port, statsPort, nodes) {
  let cfg = readFileSync(join(ROOT, 'deploy/haproxy/haproxy.cfg'), 'utf8')
  cfg = cfg.replace(/\nresolvers cluster\n(?:[ \t]+.*\n)+/, '\n')
  if (!/\n\s+bind :8080\n/.test(cfg)) throw new Error('haproxy.cfg: no "bind :8080" line')
  cfg = cfg.replace(/\n(\s+)bind :8080\n/, `\n$1bind 127.0.0.1:${port}\n`)
  if (!/\n\s+server-template .*\n/.test(cfg)) throw new Error('haproxy.cfg: no server-template line')
  // Same names as the doc's example for plain hosts: the name places a server on the ring.
  const servers = nodes.map((n, i) => `    server node${i + 1} 127.0.0.1:${n.port} check`).join('\n')
  // For experiments only (not used by the test command): extra backend lines, e.g.
  // CLUSTER_HAPROXY_BACKEND_EXTRA='option redispatch 1|retries 2' ("|" separates lines).
  const extra = (process.env.CLUSTER_HAPROXY_BACKEND_EXTRA ?? '').split('|').filter(Boolean).map((l) => `    ${l.trim()}\n`).join('')
  cfg = cfg.replace(/\n\s+server-template .*\n/, `\n${extra}${servers}\n`)
  cfg += `\nlisten stats\n    bind 127.0.0.1:${statsPort}\n    stats enable\n    stats uri /stats\n`
  return cfg
}

// ---- REST helpers --------------------------------------------------------

export async function api (base, method, path, { token, body } = {}) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  let json = null
  try { json = text ? JSON.parse(text) : null } catch { json = text }
  return { status: r.status, body: json, node: r.headers.get('x-ensemble-node') }
}

export async function signUp (base, username) {
  const creds = { username, password: 'correct horse battery staple' }
  const reg = await api(base, 'POST', '/api/auth/register', { body: creds })
  if (reg.status !== 201) throw new Error(`register ${username}: ${JSON.stringify(reg)}`)
  const login = await api(base, 'POST', '/api/auth/login', { body: creds })
  if (login.status !== 200) throw new Error(`login ${username}: ${JSON.stringify(login)}`)
  return login.body.token
}

/** A fresh ticket from `base`, retried while the route has no live node (502/503). */
export async function ticket (base, token, sid, ms = 20000) {
  return until(async () => {
    const r = await api(base, 'POST', `/api/sessions/${sid}/ticket`, { token }).catch(() => null)
    if (r && r.status === 200) return r.body.ticket
    if (r && r.status !== 502 && r.status !== 503 && r.status !== 504) throw new Error(`ticket: ${JSON.stringify(r)}`)
    return false
  }, ms, `a ticket for ${sid}`)
}

// ---- Clients -------------------------------------------------------------

/** `ws` that remembers which node answered the upgrade (X-Ensemble-Node). */
class NodeWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols)
    this.on('upgrade', (res) => { this.node = res.headers['x-ensemble-node'] })
  }
}

export function runStartFrame () {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 100)
  encoding.writeVarString(enc, JSON.stringify({ type: 'run.start' }))
  return encoding.toUint8Array(enc)
}

/**
 * A stock WebsocketProvider that reconnects through `base` with a fresh
 * single-use ticket each time: on every close it pauses the provider's own
 * reconnect, fetches a ticket, sets `provider.params` and connects again.
 * Records closes (code, node, time), syncs (node, time) and type-100 events.
 */
export function client (base, wsUrl, sid, token, name, log = () => {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(wsUrl, sid, doc, {
    WebSocketPolyfill: NodeWebSocket,
    connect: false,
    disableBc: true,
    maxBackoffTime: 1000
  })
  provider.awareness.setLocalStateField('user', { name })
  const c = {
    name, doc, provider, text: doc.getText('code'),
    closes: [], syncs: [], events: [], inserted: [], destroyed: false,
    get node () { return provider.ws?.node },
    get live () { return provider.synced && provider.wsconnected }
  }
  provider.messageHandlers[100] = (_enc, decoder) => {
    c.events.push({ at: Date.now(), ...JSON.parse(decoding.readVarString(decoder)) })
  }
  provider.on('sync', (s) => { if (s) c.syncs.push({ at: Date.now(), node: provider.ws?.node }) })
  const reconnect = async () => {
    try {
      // Back off a little when refused (1013) so a refusing node is not hammered.
      const last = c.closes[c.closes.length - 1]
      if (last && last.code === 1013) await sleep(100)
      provider.params = { ticket: await ticket(base, token, sid, 60000) }
      if (!c.destroyed) provider.connect()
    } catch (e) {
      log(`${name}: reconnect failed: ${e.message}`)
      if (!c.destroyed) setTimeout(reconnect, 200)
    }
  }
  provider.on('connection-close', (event) => {
    if (c.destroyed) return
    const ws = provider.ws
    c.closes.push({ at: Date.now(), code: event?.code, reason: event?.reason, node: ws?.node, wasOpen: provider.wsconnected })
    log(`${name}: close ${event?.code} ${event?.reason ?? ''} from ${ws?.node}`)
    provider.shouldConnect = false // the provider's own timer must not reuse the spent ticket
    reconnect()
  })
  c.start = async () => {
    provider.params = { ticket: await ticket(base, token, sid) }
    provider.connect()
  }
  c.destroy = () => {
    c.destroyed = true
    provider.destroy()
    doc.destroy()
  }
  /** Appends a unique token on its own comment line (keeps the document valid Python). */
  c.type = (tok) => {
    c.text.insert(c.text.length, `\n# ${tok}`)
    c.inserted.push(tok)
  }
  return c
}
