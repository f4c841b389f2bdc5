// Reconnecting with single-use tickets: a fresh ticket before every
// connect, the provider's own retry suppressed, backoff with retries on
// network errors, and a stop on fatal ticket errors.
import { describe, expect, it } from 'vitest'
import { Reconnector, backoffMs, isFatal, type ProviderLike, type Ticket } from '../../src/session/reconnect'

class FakeProvider implements ProviderLike {
  params: Record<string, string> = {}
  shouldConnect = false
  connects: string[] = []
  handlers: Record<string, Array<(a: any) => void>> = {}
  connect (): void { this.shouldConnect = true; this.connects.push(this.params.ticket) }
  disconnect (): void { this.shouldConnect = false }
  on (e: string, f: (a: any) => void): void { (this.handlers[e] ??= []).push(f) }
  emit (e: string, a?: any): void { for (const f of this.handlers[e] ?? []) f(a) }
}

function setup (answers: Array<Ticket | Error>) {
  const provider = new FakeProvider()
  const timers: Array<{ f: () => void, ms: number }> = []
  const events: string[] = []
  let n = 0
  const r = new Reconnector({
    provider,
    fetchTicket: async () => {
      const a = answers[n++]
      if (a === undefined) throw new Error('no more answers')
      if (a instanceof Error) throw a
      return a
    },
    onTicket: (t) => events.push(`role ${t.role}`),
    onReconnected: () => events.push('reconnected'),
    onFatal: (e) => events.push(`fatal ${(e as Error).message}`),
    onEnded: (reason) => events.push(`ended ${reason}`),
    schedule: (f, ms) => timers.push({ f, ms }),
    random: () => 0.5 // no jitter
  })
  const flush = async () => { for (let i = 0; i < 5; i++) await Promise.resolve() }
  const fire = async () => { const t = timers.shift(); if (!t) throw new Error('no timer'); t.f(); await flush() }
  return { provider, timers, events, r, flush, fire }
}

const ticket = (t: string, role = 'editor'): Ticket => ({ ticket: t, role, session_id: 's' })
const httpError = (status: number) => Object.assign(new Error(`http ${status}`), { status })

describe('Reconnector', () => {
  it('connects with a fresh ticket each time and never lets the provider reuse one', async () => {
    const { provider, timers, events, r, flush, fire } = setup([ticket('t1'), ticket('t2', 'viewer')])
    await r.start()
    expect(provider.connects).toEqual(['t1'])
    provider.emit('status', { status: 'connected' })
    provider.emit('sync', true)
    // The server goes away.
    provider.emit('connection-close', null)
    expect(provider.shouldConnect).toBe(false)
    expect(timers.map((t) => t.ms)).toEqual([100])
    await fire()
    expect(provider.connects).toEqual(['t1', 't2'])
    provider.emit('status', { status: 'connected' })
    await flush()
    expect(events).toEqual(['role editor', 'role viewer', 'reconnected'])
  })

  it('retries ticket failures with growing backoff, then recovers', async () => {
    const down = Object.assign(new Error('cannot reach the server'), { status: 0 })
    const { provider, timers, r, fire } = setup([down, httpError(503), ticket('t3')])
    await r.start()
    expect(timers.map((t) => t.ms)).toEqual([100])
    await fire()
    expect(timers.map((t) => t.ms)).toEqual([200])
    await fire()
    expect(provider.connects).toEqual(['t3'])
  })

  it('stops for good when the session was deleted (close 4404), and says why', async () => {
    const { provider, timers, events, r } = setup([ticket('t1'), ticket('t2')])
    await r.start()
    provider.emit('status', { status: 'connected' })
    provider.emit('connection-close', { code: 4404, reason: 'olivia deleted this session' })
    expect(provider.shouldConnect).toBe(false)
    expect(timers).toEqual([])
    expect(events).toEqual(['role editor', 'ended olivia deleted this session'])
    await r.start()
    expect(provider.connects).toEqual(['t1'])
    // Any other close still reconnects.
    const other = setup([ticket('a')])
    await other.r.start()
    other.provider.emit('connection-close', { code: 1013, reason: 'moved' })
    expect(other.timers.length).toBe(1)
  })

  it('also fetches a new ticket when the upgrade is refused before opening', async () => {
    const { provider, r, fire } = setup([ticket('a'), ticket('b'), ticket('c')])
    await r.start()
    provider.emit('connection-close', null)
    await fire()
    provider.emit('connection-close', null)
    await fire()
    expect(provider.connects).toEqual(['a', 'b', 'c'])
  })

  it('backs off while a node opens the socket and refuses the session, until one syncs', async () => {
    const { provider, timers, r, fire } = setup(['a', 'b', 'c', 'd', 'e'].map((t) => ticket(t)))
    await r.start()
    const waits: number[] = []
    for (let i = 0; i < 3; i++) {
      // Opened, then closed with 1013 before any sync.
      provider.emit('status', { status: 'connected' })
      provider.emit('connection-close', { code: 1013 })
      waits.push(timers[0].ms)
      await fire()
    }
    expect(waits).toEqual([100, 200, 400])
    // This one syncs: the next loss starts from the shortest wait again.
    provider.emit('status', { status: 'connected' })
    provider.emit('sync', true)
    provider.emit('connection-close', { code: 1001 })
    expect(timers.map((t) => t.ms)).toEqual([100])
    expect(provider.connects).toEqual(['a', 'b', 'c', 'd'])
  })

  it('spreads waits by ±20% so many tabs do not retry in lockstep', async () => {
    const waits: number[] = []
    for (const x of [0, 0.999]) {
      const provider = new FakeProvider()
      const timers: number[] = []
      const r = new Reconnector({
        provider,
        fetchTicket: async () => { throw new Error('down') },
        schedule: (_f, ms) => timers.push(ms),
        random: () => x
      })
      await r.start()
      waits.push(timers[0])
    }
    expect(waits).toEqual([80, 120])
  })

  it('stops on a fatal ticket error', async () => {
    const { provider, timers, events, r } = setup([httpError(404)])
    await r.start()
    expect(provider.connects).toEqual([])
    expect(timers).toEqual([])
    expect(events).toEqual(['fatal http 404'])
  })

  it('does not reconnect after stop', async () => {
    const { provider, timers, r } = setup([ticket('a')])
    await r.start()
    r.stop()
    provider.emit('connection-close', null)
    expect(timers).toEqual([])
  })

  it('has a bounded backoff and knows which statuses are fatal', () => {
    expect([0, 1, 2, 10].map(backoffMs)).toEqual([100, 200, 400, 2000])
    expect(isFatal({ status: 401 })).toBe(true)
    expect(isFatal({ status: 0 })).toBe(false)
    expect(isFatal({ status: 503 })).toBe(false)
    expect(isFatal(new Error('x'))).toBe(false)
  })
})
