// The session view (CodeMirror, xterm.js, Yjs: most of the app's bytes) is
// loaded on demand, so the sign-in and session-list pages stay small.
import { h } from '../dom'

type SessionModule = typeof import('./session')

let loading: Promise<SessionModule> | null = null

/** Starts loading the session view (once); later calls share the load. */
export function preloadSessionView (): Promise<SessionModule> {
  loading ??= import('./session').catch((err) => { loading = null; throw err })
  return loading
}

/**
 * The session view's module, or null after telling the user in `root` that
 * it could not be loaded (offline, or a new version was deployed).
 */
export async function loadSessionView (root: HTMLElement): Promise<SessionModule | null> {
  try {
    return await preloadSessionView()
  } catch {
    root.replaceChildren(h('main', { class: 'page' }, h('section', { class: 'card' },
      h('p', { class: 'form-error', role: 'alert', text: 'The session page could not be loaded.' }),
      h('button', { type: 'button', class: 'primary', text: 'Reload', onclick: () => { location.reload() } }))))
    return null
  }
}
