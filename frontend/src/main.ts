// Entry point: the header (status dots, sign out) and the router that
// mounts one view at a time, cleaning up the previous one.
import './style.css'
import { api, auth } from './api'
import { h } from './dom'
import { navigate, onNavigate, parseRoute } from './route'
import { statusBar } from './status'
import { homeView } from './views/home'
import { joinView } from './views/join'
import { loadSessionView } from './views/lazy'

const status = statusBar()
const who = h('span', { class: 'who', id: 'whoami' })
const signOut = h('button', {
  type: 'button',
  id: 'sign-out',
  text: 'Sign out',
  onclick: async () => {
    try { await api.logout() } catch { /* the token goes anyway */ }
    auth.clear()
    navigate('/')
  }
})
const header = h('header', { class: 'top' },
  h('a', { href: '/', 'data-link': true, class: 'brand', text: 'Ensemble' }),
  status.el, h('span', { class: 'spacer' }), who, signOut)
const root = h('div', { id: 'view' })
document.body.replaceChildren(header, root)

let cleanup: (() => void) | null = null
const setCleanup = (f: () => void): void => { cleanup = f }
/** Bumped by every render, so a view that finished loading late is not mounted over a newer one. */
let renders = 0

function render (): void {
  cleanup?.()
  cleanup = null
  const current = ++renders
  const user = auth.user
  who.textContent = user && auth.token ? user.username : ''
  signOut.hidden = !auth.token
  document.title = 'Ensemble'
  const route = parseRoute(location.pathname)
  if (route.name === 'session') {
    if (!auth.token) { homeView(root, render); return }
    // The editor, console and Yjs are a chunk of their own: the sign-in
    // page loads without them.
    root.replaceChildren(h('main', { class: 'page' }, h('p', { role: 'status', text: 'Loading the session…' })))
    void loadSessionView(root).then((m) => {
      if (m && current === renders) cleanup = m.sessionView(root, m.memberSource(route.id), status.setConn)
    })
  } else if (route.name === 'join') {
    joinView(root, route.link, render, status.setConn, setCleanup)
  } else {
    homeView(root, render)
  }
}

document.addEventListener('click', (e) => {
  const a = (e.target as HTMLElement).closest('a[data-link]')
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return
  e.preventDefault()
  navigate(a.getAttribute('href') ?? '/')
})
onNavigate(render)
render()
