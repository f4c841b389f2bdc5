// `/join/{link}`: open a share link. Signed in: join as yourself (the link
// makes you a member) and go to `/s/{id}`. Signed out: join as a guest
// under a display name, or sign in first.
import { api, auth, type TicketReply } from '../api'
import { h, errorText } from '../dom'
import { navigate, sessionPath } from '../route'
import type { ConnState } from '../status'
import { authForm } from './home'
import { loadSessionView, preloadSessionView } from './lazy'

export function joinView (root: HTMLElement, link: string, rerender: () => void,
  setConn: (s: ConnState) => void, setCleanup: (f: () => void) => void): void {
  // Whoever opens a link is about to need the session page.
  preloadSessionView().catch(() => { /* reported when it is needed */ })
  if (auth.token) {
    const msg = h('p', { role: 'status', text: 'Joining…' })
    root.replaceChildren(h('main', { class: 'page' }, h('section', { class: 'card' }, msg)))
    api.linkTicket(link).then((t) => { navigate(sessionPath(t.session_id), true) })
      .catch((err) => { msg.textContent = `This link does not work: ${errorText(err)}`; msg.setAttribute('role', 'alert') })
    return
  }
  const name = h('input', { id: 'guest-name', maxlength: 40, required: true, autocomplete: 'nickname' })
  const error = h('p', { class: 'form-error', role: 'alert', id: 'guest-error' })
  const form = h('form', {
    class: 'card',
    onsubmit: async (e: Event) => {
      e.preventDefault()
      error.textContent = ''
      let first: TicketReply | null
      try { first = await api.linkTicket(link, name.value) } catch (err) { error.textContent = errorText(err); return }
      const guestName = `${name.value.trim()} (guest)`
      const m = await loadSessionView(root)
      if (!m) return
      setCleanup(m.sessionView(root, {
        name: guestName,
        member: false,
        // The first ticket proves the link works; later connects fetch anew.
        ticket: async () => { const t = first; first = null; return t ?? await api.linkTicket(link, name.value) }
      }, setConn))
    }
  },
  h('h1', { text: 'Join as a guest' }),
  h('label', { for: 'guest-name', text: 'Your display name' }), name, error,
  h('button', { type: 'submit', class: 'primary', text: 'Join' }))
  root.replaceChildren(h('main', { class: 'page' }, form,
    authForm(rerender, 'Or sign in to join as yourself (you become a member).')))
}
