// Keeps a y-websocket provider connected with single-use tickets: before
// every (re)connect it fetches a fresh ticket and puts it in
// `provider.params`, instead of letting the provider retry with a used one.
// A server restart or network blip therefore heals without a reload. Fatal
// ticket errors (signed out, removed, bad link) stop it. Pure: the
// provider, ticket source, timer and randomness are injected, so it is
// unit-tested.
//
// The backoff resets only once the document has synced: a node that opens
// the socket and then refuses the session (1013 while another node holds
// it, during a failover or a hand-over) must not be retried every 100 ms by
// every open tab. Waits are jittered by ±20% so a classroom that lost its
// node does not come back in lockstep.

/** The parts of `WebsocketProvider` this uses. */
export interface ProviderLike {
  params: Record<string, string>
  shouldConnect: boolean
  connect: () => void
  disconnect: () => void
  on: (event: 'connection-close' | 'status' | 'sync', f: (arg: any) => void) => void
}

export interface Ticket { ticket: string, role: string, session_id: string, title?: string }

export interface ReconnectOptions {
  provider: ProviderLike
  fetchTicket: () => Promise<Ticket>
  /** Called with each ticket (the role may have changed). */
  onTicket?: (t: Ticket) => void
  /** Called once the socket is open again after the first time. */
  onReconnected?: () => void
  /** A ticket error that retrying cannot fix. */
  onFatal?: (err: unknown) => void
  /** The server closed the socket for good (the session was deleted). */
  onEnded?: (reason: string) => void
  schedule?: (f: () => void, ms: number) => unknown
  /** A number in [0, 1) for the jitter (default `Math.random`). */
  random?: () => number
}

/** Backoff before attempt `n` (0 = first retry): 100 ms doubling to 2 s. */
export function backoffMs (n: number): number {
  return Math.min(100 * 2 ** n, 2000)
}

/** The close code of a deleted session: reconnecting is pointless. */
export const CLOSE_DELETED = 4404

/** HTTP statuses after which fetching another ticket is pointless. */
export function isFatal (err: unknown): boolean {
  const status = (err as { status?: number } | null)?.status
  return status === 401 || status === 403 || status === 404 || status === 400 || status === 422
}

export class Reconnector {
  private attempt = 0
  private stopped = false
  private everConnected = false
  private busy = false
  private readonly schedule: (f: () => void, ms: number) => unknown

  constructor (private readonly o: ReconnectOptions) {
    this.schedule = o.schedule ?? ((f, ms) => setTimeout(f, ms))
    o.provider.on('connection-close', (e: { code?: number, reason?: string } | null) => {
      // Stop the provider's own retry (it would reuse the spent ticket).
      o.provider.shouldConnect = false
      if (this.stopped) return
      if (e?.code === CLOSE_DELETED) {
        this.stopped = true
        o.onEnded?.(e.reason ?? 'this session was deleted')
        return
      }
      this.later()
    })
    o.provider.on('status', (e: { status: string }) => {
      if (e.status !== 'connected') return
      if (this.everConnected) o.onReconnected?.()
      this.everConnected = true
    })
    o.provider.on('sync', (synced: boolean) => {
      if (synced) this.attempt = 0
    })
  }

  /** Fetches a ticket and connects; retries until stopped. */
  async start (): Promise<void> {
    if (this.stopped || this.busy) return
    this.busy = true
    try {
      const t = await this.o.fetchTicket()
      if (this.stopped) return
      this.o.onTicket?.(t)
      this.o.provider.params = { ...this.o.provider.params, ticket: t.ticket }
      this.o.provider.connect()
    } catch (err) {
      if (isFatal(err)) { this.stopped = true; this.o.onFatal?.(err); return }
      this.later()
    } finally {
      this.busy = false
    }
  }

  private later (): void {
    const jitter = 0.8 + 0.4 * (this.o.random ?? Math.random)()
    const wait = Math.round(backoffMs(this.attempt++) * jitter)
    this.schedule(() => { void this.start() }, wait)
  }

  /** Leaves for good. */
  stop (): void {
    this.stopped = true
    this.o.provider.disconnect()
  }
}
