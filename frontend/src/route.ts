// The app's addresses: `/` (sign in, sessions), `/s/{id}`, `/join/{link}`.
// Pure parsing (unit-tested) plus `navigate` for in-app links.
export type Route =
  | { name: 'home' }
  | { name: 'session', id: string }
  | { name: 'join', link: string }

export function parseRoute (path: string): Route {
  const m = path.match(/^\/(s|join)\/([^/?#]+)\/?$/)
  if (m?.[1] === 's') return { name: 'session', id: decodeURIComponent(m[2]) }
  if (m?.[1] === 'join') return { name: 'join', link: decodeURIComponent(m[2]) }
  return { name: 'home' }
}

export function sessionPath (id: string): string { return `/s/${encodeURIComponent(id)}` }
export function joinUrl (origin: string, link: string): string { return `${origin}/join/${encodeURIComponent(link)}` }

let listener: (() => void) | null = null
export function onNavigate (f: () => void): void {
  listener = f
  window.addEventListener('popstate', f)
}
export function navigate (path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path)
  else history.pushState(null, '', path)
  listener?.()
}
