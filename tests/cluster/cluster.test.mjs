// The three-node cluster test of issue 8: three `ensemble` nodes on one
// MongoDB wire server behind HAProxy (deploy/haproxy/haproxy.cfg with local
// backends), driven by stock y-websocket clients that fetch a fresh ticket
// through HAProxy before every reconnect. The steps share one cluster and
// run in order; each polls conditions with deadlines (no sleeps as sync).
//   CLUSTER_FAILOVER_TRIES=N  extra kill -9 failover measurements (default 2)
//   CLUSTER_KEEP=1            keep the temp dir (logs) even on success
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { Cluster, api, client, runStartFrame, signUp, sleep, ticket, until } from './cluster.mjs'

const PROGRAM = 'import time\nN = 50\nfor i in range(N):\n    print("tick", i, flush=True)\n    time.sleep(0.2)\n'
const EXTRA_TRIES = Number(process.env.CLUSTER_FAILOVER_TRIES ?? 2)

const tokensIn = (text) => new Set([...text.matchAll(/# ([a-z0-9]+-\d+)/g)].map((m) => m[1]))
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }

describe('three nodes behind HAProxy', { timeout: 240000 }, () => {
  const cluster = new Cluster()
  const log = (m) => cluster.log(m)
  let failed = false
  let token
  // node: where the session is served now; home: where HAProxy hashes it.
  const A = { sid: null, node: null, home: null, clients: [] } // the session whose node is killed
  const B = { sid: null, node: null, home: null, clients: [] } // a session on another node
  const all = () => [...A.clients, ...B.clients]
  const failovers = [] // ms, kill -9 → first client synced on another node
  let typing = null

  function startTyping (clients) {
    let n = 0
    typing = setInterval(() => {
      n++
      for (const c of clients) c.type(`${c.name}-${n}`)
    }, 50)
  }
  function stopTyping () { clearInterval(typing); typing = null }

  async function converged (clients, what, ms = 15000) {
    const want = new Set(clients.flatMap((c) => c.inserted))
    await until(() => {
      if (!clients.every((c) => c.live)) return false
      const t = clients[0].text.toString()
      if (!clients.every((c) => c.text.toString() === t)) return false
      const have = tokensIn(t)
      return [...want].every((x) => have.has(x))
    }, ms, what)
  }

  before(async () => {
    failed = true // until the cluster is up: keep the logs
    await cluster.start()
    failed = false
    log(`cluster up: HAProxy ${cluster.base}, nodes ${cluster.nodes.map((n) => `${n.id}=${n.port}`).join(' ')}`)
    for (const n of cluster.nodes) assert.equal(n.ready.sandbox?.usable ?? true, true, `${n.id}: sandbox not usable`)
    token = await signUp(cluster.base, 'alice')
  })

  after(async () => {
    stopTyping()
    for (const c of all()) c.destroy()
    await cluster.stop()
    if (failovers.length) {
      console.log(`failover (kill -9 → first client synced on another node), ${failovers.length} tries: ` +
        `p50 ${median(failovers)} ms, min ${Math.min(...failovers)} ms, max ${Math.max(...failovers)} ms [${failovers.join(', ')}]`)
    }
    if (failed || process.env.CLUSTER_KEEP) console.log(`logs kept in ${cluster.dir}`)
    else cluster.cleanup()
  })

  // Any failing step keeps the logs.
  const step = (name, fn, opts = {}) => it(name, opts, async (t) => {
    log(`== ${name}`)
    try { await fn(t) } catch (e) { if (!opts.todo) failed = true; log(`FAILED: ${e.stack}`); throw e }
  })

  step('every client of one session lands on the same node', async () => {
    const created = await api(cluster.base, 'POST', '/api/sessions', { token, body: { title: 'A' } })
    assert.equal(created.status, 201)
    A.sid = created.body.id
    // Hashed routes of one session: always the same node.
    const nodes = new Set()
    for (let i = 0; i < 6; i++) {
      const r = await api(cluster.base, 'GET', `/api/sessions/${A.sid}`, { token })
      assert.equal(r.status, 200)
      nodes.add(r.node)
    }
    assert.equal(nodes.size, 1, `GET /api/sessions/{id} answered by ${[...nodes]}`)
    A.node = A.home = [...nodes][0]
    // Stateless routes go round-robin: all three nodes answer /api/me.
    const rr = new Set()
    for (let i = 0; i < 6; i++) rr.add((await api(cluster.base, 'GET', '/api/me', { token })).node)
    assert.equal(rr.size, 3, `round-robin reached ${[...rr]}`)

    A.clients = ['a1', 'a2', 'a3'].map((name) => client(cluster.base, cluster.ws, A.sid, token, name, log))
    for (const c of A.clients) await c.start()
    await until(() => A.clients.every((c) => c.live), 10000, 'three clients synced')
    for (const c of A.clients) assert.equal(c.node, A.node, `${c.name} served by ${c.node}, session on ${A.node}`)
    A.clients[0].text.insert(0, PROGRAM)
    await until(() => A.clients.every((c) => c.text.toString() === PROGRAM), 10000, 'the program to reach every client')
    for (const c of A.clients) c.type(`${c.name}-0`)
    await converged(A.clients, 'session A to converge')
    assert.ok(A.clients[0].text.toString().startsWith(PROGRAM))
    for (const c of A.clients) assert.deepEqual(c.closes, [], `${c.name} was closed`)

    // A second session on another node, for "other sessions are unaffected".
    for (let i = 0; i < 40 && !B.sid; i++) {
      const s = await api(cluster.base, 'POST', '/api/sessions', { token, body: { title: `B${i}` } })
      const g = await api(cluster.base, 'GET', `/api/sessions/${s.body.id}`, { token })
      if (g.node !== A.node) { B.sid = s.body.id; B.node = B.home = g.node }
    }
    assert.ok(B.sid, 'no session hashed to another node in 40 tries')
    B.clients = ['b1', 'b2'].map((name) => client(cluster.base, cluster.ws, B.sid, token, name, log))
    for (const c of B.clients) await c.start()
    for (const c of B.clients) c.type(`${c.name}-0`)
    await converged(B.clients, 'session B to converge')
    for (const c of B.clients) assert.equal(c.node, B.node)
    log(`session A ${A.sid} on ${A.node}; session B ${B.sid} on ${B.node}`)
  })

  step('kill -9 of the session\'s node: clients fail over, nothing received is lost, the run is interrupted, a new run works; other sessions unaffected', async () => {
    const [a1] = A.clients
    startTyping(all())
    // One run streams while the clients type.
    const ev0 = a1.events.length
    a1.provider.ws.send(runStartFrame())
    const started = await until(() => a1.events.slice(ev0).find((e) => e.type === 'run.started' || e.type === 'error'), 10000, 'run.started')
    assert.equal(started.type, 'run.started', JSON.stringify(started))
    const runId = started.run_id
    await until(() => A.clients.every((c) => c.events.some((e) => e.type === 'run.output' && e.run_id === runId && e.seq >= 3)), 10000, 'run output streaming to all three')
    await until(() => A.clients.every((c) => {
      const have = tokensIn(c.text.toString())
      return A.clients.every((o) => have.has(`${o.name}-5`))
    }), 10000, 'each client to see the others typing')

    // What every client had received (and typed) when the node died.
    const seen = new Set()
    for (const c of A.clients) for (const x of tokensIn(c.text.toString())) seen.add(x)
    const killed = cluster.node(A.node)
    const t0 = Date.now()
    await cluster.kill(killed)
    const bMark = B.clients[0].inserted.length

    // Session B keeps working during the failover: a new edit of b1 reaches b2.
    await until(() => {
      const tok = B.clients[0].inserted[bMark + 2]
      return tok && tokensIn(B.clients[1].text.toString()).has(tok)
    }, 3000, 'session B edits to flow while A fails over')

    await until(() => A.clients.every((c) => c.live && c.node && c.node !== killed.id && c.syncs.some((s) => s.at > t0)), 20000, 'A clients to reconnect to another node')
    const first = Math.min(...A.clients.map((c) => c.syncs.find((s) => s.at > t0).at)) - t0
    const lastC = Math.max(...A.clients.map((c) => c.syncs.find((s) => s.at > t0).at)) - t0
    failovers.push(first)
    const newNode = A.clients[0].node
    for (const c of A.clients) assert.equal(c.node, newNode, 'all A clients on one node')
    const codes = A.clients.flatMap((c) => c.closes.filter((x) => x.at >= t0).map((x) => x.code))
    console.log(`failover: ${killed.id} killed; first client synced on ${newNode} after ${first} ms, all three after ${lastC} ms; close codes seen: ${codes.join(',')}`)
    log(`failover ${first} ms / ${lastC} ms, codes ${codes}`)
    assert.ok(lastC < 15000, `failover took ${lastC} ms`)

    // Nothing any client had received is lost, and typing during the outage arrives too.
    stopTyping()
    await converged(A.clients, 'session A to converge after failover')
    const final = tokensIn(A.clients[0].text.toString())
    const missing = [...seen].filter((x) => !final.has(x))
    assert.deepEqual(missing, [], 'edits lost in the failover')
    await converged(B.clients, 'session B to converge')

    // The run the dead node was executing is marked interrupted (through HAProxy).
    const run = await until(async () => {
      const r = await api(cluster.base, 'GET', `/api/sessions/${A.sid}/runs`, { token })
      const found = r.status === 200 && r.body.runs.find((x) => x.id === runId || x.run_id === runId)
      return found && found.status === 'interrupted' && found
    }, 10000, `run ${runId} marked interrupted`).catch(async (e) => {
      const r = await api(cluster.base, 'GET', `/api/sessions/${A.sid}/runs`, { token })
      throw new Error(`${e.message}; runs: ${JSON.stringify(r.body)}`)
    })
    log(`interrupted run: ${JSON.stringify(run)}`)

    // A new run works on the new node (a short one: N = 3).
    const at = a1.text.toString().indexOf('N = 50')
    a1.doc.transact(() => { a1.text.delete(at, 6); a1.text.insert(at, 'N = 3') })
    const ev1 = a1.events.length
    a1.provider.ws.send(runStartFrame())
    const exited = await until(() => a1.events.slice(ev1).find((e) => e.type === 'run.exited' || e.type === 'error'), 20000, 'the new run to exit')
    assert.equal(exited.type, 'run.exited', JSON.stringify(exited))
    assert.equal(exited.status, 'finished', JSON.stringify(exited))
    assert.notEqual(exited.run_id, runId)
    const out = a1.events.slice(ev1).filter((e) => e.type === 'run.output' && e.run_id === exited.run_id).map((e) => e.data).join('')
    assert.match(out, /tick 2\n/)
    assert.ok(!/tick 3\n/.test(out))

    // Session B never noticed: no close, same node.
    for (const c of B.clients) {
      assert.deepEqual(c.closes, [], `${c.name} (session B on ${B.node}) was closed`)
      assert.equal(c.node, B.node)
    }
    A.node = newNode
  })

  step('after the killed node comes back, the session moves back to it through HAProxy, one node at a time', async () => {
    const back = cluster.nodes.find((n) => n.child.exitCode !== null || n.child.signalCode !== null)
    assert.ok(back, 'the killed node')
    assert.equal(back.id, A.home)
    const held = A.node // the node that took the session over
    const seen = new Set(A.clients.flatMap((c) => [...tokensIn(c.text.toString())]))
    await cluster.startNode(back)
    await until(async () => (await cluster.haproxyUp()).length === 3, 15000, 'HAProxy to see the node up again')

    // A new client goes where HAProxy hashes the session: its home node,
    // which asks the holder for it; the holder hands it over (it has held
    // it for two TTLs and no run is active), telling its clients to
    // reconnect, and they too land on the home node.
    const mark = Date.now()
    const late = client(cluster.base, cluster.ws, A.sid, token, 'late', log)
    try {
      await late.start()
      await until(() => late.live, 20000, 'the late client to sync through HAProxy').catch((e) => {
        throw new Error(`${e.message}: ${late.closes.length} closes, codes ${[...new Set(late.closes.map((x) => `${x.code} from ${x.node}`))].join('; ')}`)
      })
      assert.equal(late.node, A.home, 'the late client is served by the session\'s home node')
      await until(() => A.clients.every((c) => c.live && c.node === A.home), 20000, 'A clients to follow to the home node')
      console.log(`hand-back: ${held} → ${A.home}; late client synced after ${late.syncs[0].at - mark} ms, every client after ${Math.max(...A.clients.map((c) => c.syncs.find((x) => x.at > mark).at)) - mark} ms`)
      for (const c of A.clients) {
        const first = c.closes.find((x) => x.at >= mark)
        assert.ok(first, `${c.name} was not moved`)
        assert.equal(first.code, 1013, `${c.name}: ${JSON.stringify(first)}`)
        assert.match(first.reason, new RegExp(`moved to node ${A.home}`))
      }
      A.node = A.home
      await converged([...A.clients, late], 'session A to converge on its home node')
      const have = tokensIn(late.text.toString())
      assert.deepEqual([...seen].filter((x) => !have.has(x)), [], 'edits lost in the hand-back')
    } finally { late.destroy() }

    // Never two at once: probe every node directly (bypassing HAProxy) with
    // fresh tickets, several rounds. A direct join counts as a node being
    // sent clients, so probes may move the session; in every round at most
    // one node serves it and the others refuse with 1013.
    for (let round = 0; round < 4; round++) {
      const probes = await Promise.all(cluster.nodes.map(async (n) => {
        const tk = await ticket(n.base, token, A.sid)
        const p = { node: n.id, ws: new WebSocket(`ws://127.0.0.1:${n.port}/ws/${A.sid}?ticket=${tk}`), open: false, code: null, msgs: 0 }
        p.ws.on('open', () => { p.open = true; p.openedAt = Date.now() })
        p.ws.on('message', () => { p.msgs++ })
        p.ws.on('close', (code) => { p.code = code })
        p.ws.on('error', () => {})
        return p
      }))
      // Settled: closed, or open and sent messages for 1.5 s without a close.
      await until(() => probes.every((p) => p.code !== null || (p.open && p.msgs > 0 && Date.now() - p.openedAt > 1500)), 10000, 'probes to settle')
      const serving = probes.filter((p) => p.code === null)
      log(`round ${round}: ${probes.map((p) => `${p.node}:${p.code ?? 'open'}`).join(' ')}`)
      assert.ok(serving.length <= 1, `nodes serving ${A.sid} at once: ${probes.map((p) => `${p.node}=${p.code ?? 'open'}`).join(' ')}`)
      for (const p of probes) if (p !== serving[0]) assert.equal(p.code, 1013, `${p.node} closed with ${p.code}`)
      for (const p of probes) p.ws.terminate()
    }
    // Afterwards HAProxy's clients bring the session home again, intact.
    await until(() => A.clients.every((c) => c.live && c.node === A.home), 30000, 'A clients back on the home node after the probes')
    await converged(A.clients, 'session A to converge after the probes')
    const have = tokensIn(A.clients[0].text.toString())
    assert.deepEqual([...seen].filter((x) => !have.has(x)), [], 'edits lost while probing')
    // Session B was never touched.
    for (const c of B.clients) {
      assert.deepEqual(c.closes, [], `${c.name} (session B on ${B.node}) was closed`)
      assert.equal(c.node, B.node)
    }
  })

  step('a rolling restart (SIGTERM one node at a time) loses nothing', async () => {
    startTyping(all())
    for (const n of cluster.nodes) {
      const mark = Date.now()
      const hit = all().filter((c) => c.node === n.id)
      const { code, ms } = await cluster.terminate(n)
      assert.equal(code, 0, `${n.id} exit code after SIGTERM`)
      await cluster.startNode(n)
      await until(async () => (await cluster.haproxyUp()).length === 3, 15000, `HAProxy to see ${n.id} up`)
      await until(() => all().every((c) => c.live), 20000, 'every client connected again')
      const back = hit.map((c) => c.syncs.find((s) => s.at > mark)?.at - mark)
      console.log(`rolling: ${n.id} stopped in ${ms} ms; its ${hit.length} clients synced again after ${back.join(', ') || '-'} ms; round ${Date.now() - mark} ms`)
      for (const c of hit) {
        const codes = c.closes.filter((x) => x.at >= mark).map((x) => x.code)
        assert.ok(codes.length === 0 || codes[0] === 1001, `${c.name}: first close ${codes[0]} (expected 1001)`)
      }
    }
    stopTyping()
    await converged(A.clients, 'session A to converge after the rolling restart', 20000)
    await converged(B.clients, 'session B to converge after the rolling restart', 20000)
    // The store has it all: a fresh client on the serving node loads every edit.
    for (const S of [A, B]) {
      const node = cluster.node(S.clients[0].node)
      const fresh = client(node.base, `ws://127.0.0.1:${node.port}/ws`, S.sid, token, 'fresh', log)
      try {
        await fresh.start()
        await until(() => fresh.live, 10000, 'a fresh client to sync')
        const want = new Set(S.clients.flatMap((c) => c.inserted))
        await until(() => { const have = tokensIn(fresh.text.toString()); return [...want].every((x) => have.has(x)) }, 10000, `every edit of ${S.sid} in the store`)
      } finally { fresh.destroy() }
    }
  })

  step('what a lease costs: store calls per loaded session per minute, while clients type', async () => {
    const ttlMs = 3000 // --lease-ttl-secs in cluster.mjs
    const metric = async (n) => {
      const text = await (await fetch(`${n.base}/metrics`)).text()
      const num = (re) => Number((text.match(re) ?? [])[1] ?? NaN)
      return {
        rooms: num(/^ensemble_rooms_loaded (\d+)$/m),
        acquire: num(/^ensemble_lease_calls_total\{call="acquire"\} (\d+)$/m),
        renew: num(/^ensemble_lease_calls_total\{call="renew"\} (\d+)$/m),
        release: num(/^ensemble_lease_calls_total\{call="release"\} (\d+)$/m)
      }
    }
    const node = cluster.node(B.clients[0].node)
    startTyping(B.clients)
    try {
      // A measurement window of three TTLs (the wait is the measurement).
      let m0, m1, ms
      for (let i = 0; i < 3; i++) {
        m0 = await metric(node)
        const t0 = Date.now()
        await sleep(3 * ttlMs)
        m1 = await metric(node)
        ms = Date.now() - t0
        if (m0.rooms === m1.rooms) break
      }
      assert.equal(m0.rooms, m1.rooms, 'rooms loaded changed during every window')
      assert.ok(m1.rooms >= 1)
      const perMin = (m1.renew - m0.renew) / m1.rooms * 60000 / ms
      const expected = 60000 / (ttlMs / 3)
      const edits = B.clients.length * ms / 50
      console.log(`lease cost on ${node.id}: ${m1.rooms} rooms, ${m1.renew - m0.renew} renewals in ${ms} ms while ${Math.round(edits)} edits were typed: ` +
        `${perMin.toFixed(1)} store calls per loaded session per minute (expected ${expected} at a ${ttlMs / 1000} s TTL, so ${60000 / 2000} at 6 s and ${60000 / 5000} at 15 s); ` +
        `acquires ${m1.acquire - m0.acquire}, releases ${m1.release - m0.release}`)
      assert.ok(perMin <= expected * 1.5, `${perMin} lease calls per session per minute`)
      assert.equal(m1.acquire - m0.acquire, 0, 'typing caused lease acquires')
    } finally { stopTyping() }
    await converged(B.clients, 'session B to converge')
  })

  step(`failover time over ${EXTRA_TRIES} more kill -9 tries`, async () => {
    for (let i = 0; i < EXTRA_TRIES; i++) {
      const s = await api(cluster.base, 'POST', '/api/sessions', { token, body: { title: `F${i}` } })
      const c = client(cluster.base, cluster.ws, s.body.id, token, `f${i}`, log)
      try {
        await c.start()
        await until(() => c.live, 10000, 'client synced')
        c.type(`f${i}-1`)
        const victim = cluster.node(c.node)
        const t0 = Date.now()
        await cluster.kill(victim)
        await until(() => c.live && c.node !== victim.id, 20000, 'failover')
        const ms = c.syncs.find((x) => x.at > t0).at - t0
        failovers.push(ms)
        console.log(`failover try ${i + 2}: ${victim.id} → ${c.node} in ${ms} ms`)
        assert.ok(tokensIn(c.text.toString()).has(`f${i}-1`))
        await cluster.startNode(victim)
        await until(async () => (await cluster.haproxyUp()).length === 3, 15000, `HAProxy to see ${victim.id} up`)
      } finally { c.destroy() }
    }
  })
})
