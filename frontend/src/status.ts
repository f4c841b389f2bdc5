// The status dots in the header: the websocket connection (set by the
// session view) and the store's state from `/readyz`, polled every 10 s.
import { h } from './dom'

export type ConnState = 'connected' | 'connecting' | 'reconnecting' | 'offline' | 'none'

export function statusBar (): { el: HTMLElement, setConn: (s: ConnState) => void } {
  const conn = h('span', { class: 'dot', id: 'conn-status', 'data-state': 'none', role: 'status', 'aria-live': 'polite' })
  const storeText = h('span', { class: 'label', text: 'storage …' })
  const store = h('span', { class: 'dot', id: 'store-status', 'data-state': 'unknown', title: 'Storage' }, storeText)
  const setConn = (s: ConnState): void => {
    conn.dataset.state = s
    conn.textContent = s === 'none' ? '' : s
    conn.hidden = s === 'none'
  }
  setConn('none')
  const poll = async (): Promise<void> => {
    try {
      const r = await fetch('/readyz')
      const j = await r.json()
      const kind = j?.store?.kind ?? 'store'
      const state = j?.store?.state ?? (r.ok ? 'ok' : 'down')
      store.dataset.state = r.ok ? 'ok' : 'down'
      storeText.textContent = `${kind}: ${state}`
      const sandbox = j?.sandbox?.usable === false ? ' · sandbox unavailable' : ''
      store.title = `Storage ${kind} is ${state}${sandbox}`
    } catch {
      store.dataset.state = 'down'
      storeText.textContent = 'storage: unreachable'
    }
  }
  void poll()
  setInterval(() => { void poll() }, 10000)
  return { el: h('div', { class: 'status' }, conn, store), setConn }
}
