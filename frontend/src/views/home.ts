// `/`: the sign-in / sign-up form when signed out; your sessions and a
// "new session" form when signed in. API errors show beside the form.
import { api, auth, ApiError } from '../api'
import { h, errorText } from '../dom'
import { confirmButton } from '../session/confirm'
import { navigate, sessionPath } from '../route'

export function authForm (onDone: () => void, intro?: string): HTMLElement {
  const error = h('p', { class: 'form-error', role: 'alert', id: 'auth-error' })
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 32 })
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true })
  const busy = (on: boolean): void => { for (const b of form.querySelectorAll('button')) b.disabled = on }
  const go = async (register: boolean): Promise<void> => {
    error.textContent = ''
    if (!form.reportValidity()) return
    busy(true)
    try {
      if (register) await api.register(username.value, password.value)
      const r = await api.login(username.value, password.value)
      auth.set(r.token, r.user)
      onDone()
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 429 && err.retryAfter && !/\d/.test(err.message)
        ? `Too many attempts — try again in ${err.retryAfter} s`
        : errorText(err)
    } finally { busy(false) }
  }
  const form = h('form', { class: 'card auth', 'aria-labelledby': 'auth-title', onsubmit: (e: Event) => { e.preventDefault(); void go(false) } },
    h('h1', { id: 'auth-title', text: 'Sign in to Ensemble' }),
    intro ? h('p', { text: intro }) : null,
    h('label', { for: 'username', text: 'Username' }), username,
    h('label', { for: 'password', text: 'Password' }), password,
    error,
    h('div', { class: 'row' },
      h('button', { type: 'submit', class: 'primary', text: 'Sign in' }),
      h('button', { type: 'button', text: 'Create account', onclick: () => { void go(true) } }))
  )
  return form
}

export function homeView (root: HTMLElement, rerender: () => void): void {
  if (!auth.token) { root.replaceChildren(h('main', { class: 'page' }, authForm(rerender))); return }
  const list = h('ul', { class: 'sessions', 'aria-label': 'Your sessions' })
  const error = h('p', { class: 'form-error', role: 'alert', id: 'session-error' })
  const title = h('input', { id: 'new-title', required: true, maxlength: 100, placeholder: 'e.g. Pair practice' })
  const form = h('form', {
    class: 'row',
    onsubmit: async (e: Event) => {
      e.preventDefault()
      error.textContent = ''
      try { const s = await api.createSession(title.value); navigate(sessionPath(s.id)) } catch (err) { error.textContent = errorText(err) }
    }
  }, h('label', { for: 'new-title', text: 'New session title' }), title, h('button', { class: 'primary', type: 'submit', text: 'Create session' }))
  root.replaceChildren(h('main', { class: 'page' },
    h('section', { class: 'card' }, h('h1', { text: 'Your sessions' }), form, error, list)))
  api.sessions().then((sessions) => {
    if (sessions.length === 0) list.append(h('li', { class: 'muted', text: 'No sessions yet: create one above.' }))
    for (const s of sessions) {
      const when = s.updated_at ? new Date(s.updated_at).toLocaleString() : ''
      const li = h('li', { 'data-session': s.id },
        h('a', { href: sessionPath(s.id), 'data-link': true, text: s.title }),
        h('span', { class: 'muted', text: ` ${s.role}${when ? ' · ' + when : ''}` }))
      // A member can leave a session someone else owns; the owner can
      // delete theirs (for everyone: its document and runs go too).
      const me = auth.user?.id
      const gone = (): void => {
        li.remove()
        if (!list.querySelector('li[data-session]')) list.append(h('li', { class: 'muted', text: 'No sessions yet: create one above.' }))
      }
      if (s.role === 'owner') {
        li.append(' ', confirmButton({
          text: 'Delete',
          label: `Delete ${s.title}`,
          busy: 'Deleting…',
          action: async () => { await api.deleteSession(s.id); gone() },
          onError: (err) => { error.textContent = `Could not delete ${s.title}: ${errorText(err)}` }
        }))
      } else if (me) {
        li.append(' ', confirmButton({
          text: 'Leave',
          label: `Leave ${s.title}`,
          busy: 'Leaving…',
          action: async () => { await api.removeMember(s.id, me); gone() },
          onError: (err) => { error.textContent = `Could not leave ${s.title}: ${errorText(err)}` }
        }))
      }
      list.append(li)
    }
  }).catch((err) => {
    if (!auth.token) rerender()
    else error.textContent = errorText(err)
  })
}
