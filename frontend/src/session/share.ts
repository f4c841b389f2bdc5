// Share links (owner only): make a viewer or editor link and copy it.
// `onLink` hears of each new link (the People panel lists them).
import { api } from '../api'
import { h, errorText } from '../dom'
import { joinUrl } from '../route'

export function sharePanel (sessionId: string, onLink?: () => void): HTMLElement {
  const url = h('input', { id: 'share-url', readonly: true, 'aria-label': 'Share link', placeholder: 'Make a link to share' })
  const note = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite' })
  const make = async (role: 'viewer' | 'editor'): Promise<void> => {
    note.textContent = ''
    try {
      const r = await api.createLink(sessionId, role)
      url.value = joinUrl(location.origin, r.link)
      url.dataset.role = role
      onLink?.()
      try {
        await navigator.clipboard.writeText(url.value)
        note.textContent = `${role} link copied`
      } catch {
        url.select()
        note.textContent = `${role} link ready: copy it from the box`
      }
    } catch (err) { note.textContent = errorText(err) }
  }
  return h('div', { class: 'share' },
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'share-viewer', text: 'Copy viewer link', onclick: () => { void make('viewer') } }),
      h('button', { type: 'button', id: 'share-editor', text: 'Copy editor link', onclick: () => { void make('editor') } })),
    url, note)
}
