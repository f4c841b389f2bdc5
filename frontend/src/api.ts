// The REST client: JSON in and out, the bearer token kept in localStorage,
// and API errors turned into `ApiError` with the server's message.
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string, readonly retryAfter?: number) {
    super(message)
  }
}

export interface User { id: string, username: string }
export interface SessionSummary { id: string, title: string, owner: string, role: string, created_at?: number, updated_at?: number }
/** The roles an owner can hand out (to a link or a member). */
export type GrantableRole = 'viewer' | 'editor'
export interface Member { id: string, username: string, role: string }
/** A share link as the owner sees it later: the link itself is not kept, only its id. */
export interface LinkInfo { link_id: string, role: string, created_at: number }
/** `links` is present for the owner only. */
export interface SessionDetail extends SessionSummary { members: Member[], links?: LinkInfo[] }
export interface TicketReply { session_id: string, title?: string, ticket: string, role: string, expires_in: number }
export interface RunSummary { id: string, author_name: string, status: string, exit_code: number | null, reason: string, created_at: number, duration_ms: number }
export interface RunRecord extends RunSummary { code: string, output: Array<{ seq: number, stream: string, data: string }>, truncated?: boolean }

const TOKEN = 'ensemble.token'
const USER = 'ensemble.user'

export const auth = {
  get token (): string | null { return localStorage.getItem(TOKEN) },
  get user (): User | null {
    try { return JSON.parse(localStorage.getItem(USER) ?? 'null') } catch { return null }
  },
  set (token: string, user: User): void {
    localStorage.setItem(TOKEN, token)
    localStorage.setItem(USER, JSON.stringify(user))
  },
  clear (): void {
    localStorage.removeItem(TOKEN)
    localStorage.removeItem(USER)
  }
}

/** Calls the API; throws `ApiError` for any non-2xx answer or network failure. */
export async function call<T> (method: string, path: string, body?: unknown, withToken = true): Promise<T> {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  const token = withToken ? auth.token : null
  if (token) headers.authorization = `Bearer ${token}`
  let r: Response
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  } catch {
    throw new ApiError(0, 'network', 'cannot reach the server')
  }
  const text = await r.text()
  let data: any = null
  try { data = text ? JSON.parse(text) : null } catch { data = null }
  if (!r.ok) {
    const retry = Number(r.headers.get('retry-after')) || undefined
    const code = data?.error?.code ?? `http_${r.status}`
    const message = data?.error?.message ?? `the server answered ${r.status}`
    if (r.status === 401 && token && code !== 'invalid_credentials') auth.clear()
    throw new ApiError(r.status, code, message, retry)
  }
  return data as T
}

export const api = {
  register: async (username: string, password: string) =>
    await call<{ user: User }>('POST', '/api/auth/register', { username, password }, false),
  login: async (username: string, password: string) =>
    await call<{ token: string, user: User }>('POST', '/api/auth/login', { username, password }, false),
  logout: async () => await call<null>('POST', '/api/auth/logout'),
  sessions: async () => (await call<{ sessions: SessionSummary[] }>('GET', '/api/sessions')).sessions,
  createSession: async (title: string) => await call<SessionSummary>('POST', '/api/sessions', { title }),
  session: async (id: string) => await call<SessionDetail>('GET', `/api/sessions/${encodeURIComponent(id)}`),
  renameSession: async (id: string, title: string) =>
    await call<SessionSummary>('PATCH', `/api/sessions/${encodeURIComponent(id)}`, { title }),
  createLink: async (id: string, role: GrantableRole) =>
    await call<{ link: string, role: string, link_id: string }>('POST', `/api/sessions/${encodeURIComponent(id)}/links`, { role }),
  revokeLink: async (id: string, linkId: string): Promise<void> => {
    await call<null>('DELETE', `/api/sessions/${encodeURIComponent(id)}/links/${encodeURIComponent(linkId)}`)
  },
  setMemberRole: async (id: string, userId: string, role: GrantableRole) =>
    await call<Member>('PUT', `/api/sessions/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`, { role }),
  deleteSession: async (id: string): Promise<void> => {
    await call<null>('DELETE', `/api/sessions/${encodeURIComponent(id)}`)
  },
  removeMember: async (id: string, userId: string): Promise<void> => {
    await call<null>('DELETE', `/api/sessions/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`)
  },
  sessionTicket: async (id: string) => await call<TicketReply>('POST', `/api/sessions/${encodeURIComponent(id)}/ticket`),
  linkTicket: async (link: string, guestName?: string) =>
    await call<TicketReply>('POST', `/api/links/${encodeURIComponent(link)}/ticket`,
      auth.token ? undefined : { name: guestName ?? '' }),
  runs: async (id: string, before?: string) =>
    await call<{ runs: RunSummary[], next: string | null }>('GET',
      `/api/sessions/${encodeURIComponent(id)}/runs?limit=20${before ? `&before=${encodeURIComponent(before)}` : ''}`),
  run: async (id: string) => await call<RunRecord>('GET', `/api/runs/${encodeURIComponent(id)}`)
}
