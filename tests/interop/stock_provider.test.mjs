// The interop test of issue 4: stock `y-websocket` WebsocketProviders (the
// npm package, unmodified) against a real Ensemble server, on both stores.
// Three editors make concurrent random edits and converge; awareness is
// seen and removed; a viewer's edit is refused and never reaches anyone.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { api, backends, signUp, startServer, until } from './server.mjs'

function connect (server, sessionId, ticket, name) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.ws, sessionId, doc, {
    WebSocketPolyfill: WebSocket,
    params: { ticket },
    disableBc: true,
    // Tickets are single use; a test client does not reconnect.
    maxBackoffTime: 60000
  })
  provider.awareness.setLocalStateField('user', { name })
  return { doc, provider, text: doc.getText('code'), name }
}

async function synced (client) {
  await until(() => client.provider.synced, 10000, `${client.name} synced`)
}

function randomEdit (client, rnd) {
  const t = client.text
  if (t.length > 0 && rnd() < 0.3) {
    const at = Math.floor(rnd() * t.length)
    t.delete(at, Math.min(3, t.length - at))
  } else {
    const at = Math.floor(rnd() * (t.length + 1))
    t.insert(at, `${client.name[0]}${Math.floor(rnd() * 100)} `)
  }
}

function seeded (seed) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
}

for (const backend of backends()) {
  test(`stock y-websocket clients converge, see presence, and a viewer cannot edit (${backend})`, async () => {
    const server = await startServer(backend)
    const clients = []
    try {
      const alice = await signUp(server, 'alice')
      const bob = await signUp(server, 'bob')
      const dave = await signUp(server, 'dave')
      const session = await api(server, 'POST', '/api/sessions', { token: alice, body: { title: 'Interop' } })
      assert.equal(session.status, 201)
      const sid = session.body.id
      const editLink = (await api(server, 'POST', `/api/sessions/${sid}/links`, { token: alice, body: { role: 'editor' } })).body.link
      const viewLink = (await api(server, 'POST', `/api/sessions/${sid}/links`, { token: alice, body: { role: 'viewer' } })).body.link

      const ticket = async (token) => (await api(server, 'POST', `/api/sessions/${sid}/ticket`, { token })).body.ticket
      const linkTicket = async (link, token, body) => (await api(server, 'POST', `/api/links/${link}/ticket`, { token, body })).body

      const a = connect(server, sid, await ticket(alice), 'alice')
      const b = connect(server, sid, (await linkTicket(editLink, bob)).ticket, 'bob')
      const d = connect(server, sid, (await linkTicket(editLink, dave)).ticket, 'dave')
      const guest = await linkTicket(viewLink, undefined, { name: 'Carol' })
      assert.equal(guest.role, 'viewer')
      const c = connect(server, sid, guest.ticket, 'carol')
      clients.push(a, b, d, c)
      for (const x of clients) await synced(x)

      // Presence: every client sees all four.
      await until(() => clients.every((x) => x.provider.awareness.getStates().size === 4), 10000, 'awareness of all four')
      const names = [...a.provider.awareness.getStates().values()].map((s) => s.user?.name).sort()
      assert.deepEqual(names, ['alice', 'bob', 'carol', 'dave'])

      // Concurrent random edits from the three editors.
      const rnds = [seeded(1), seeded(2), seeded(3)]
      for (let round = 0; round < 60; round++) {
        [a, b, d].forEach((x, i) => randomEdit(x, rnds[i]))
        if (round % 10 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      a.text.insert(0, 'END-A ')
      await until(() => [b, d, c].every((x) => x.text.toString() === a.text.toString()) &&
        b.text.toString().includes('END-A'), 15000, 'convergence')
      assert.ok(a.text.length > 0)

      // The viewer's edit: refused with permission denied, never relayed.
      const warnings = []
      const warn = console.warn
      console.warn = (...args) => { warnings.push(args.join(' ')) }
      try {
        c.text.insert(0, 'VIEWER-EDIT ')
        await until(() => warnings.some((w) => w.includes('Permission denied')), 10000, 'permission denied')
      } finally {
        console.warn = warn
      }
      a.text.insert(0, 'SENTINEL ')
      await until(() => b.text.toString().startsWith('SENTINEL') && d.text.toString().startsWith('SENTINEL'), 10000, 'sentinel')
      for (const x of [a, b, d]) assert.ok(!x.text.toString().includes('VIEWER-EDIT'), `${x.name} saw the viewer's edit`)

      // A fresh client syncs the server's document: no viewer edit there either.
      const late = connect(server, sid, await ticket(alice), 'late')
      clients.push(late)
      await synced(late)
      await until(() => late.text.toString() === a.text.toString(), 10000, 'late join sync')
      assert.ok(!late.text.toString().includes('VIEWER-EDIT'))

      // Leaving removes presence promptly.
      b.provider.destroy()
      await until(() => ![...a.provider.awareness.getStates().values()].some((s) => s.user?.name === 'bob'), 5000, 'bob gone')
    } finally {
      // Destroying the doc also stops its awareness timer, so the process can exit.
      for (const x of clients) {
        x.provider.destroy()
        x.doc.destroy()
      }
      await server.stop()
    }
  })
}
