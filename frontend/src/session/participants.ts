// The participants list, from awareness: each person's name, colour, role.
import type { Awareness } from 'y-protocols/awareness'
import { h } from '../dom'

export interface PresenceUser { name: string, color: string, colorLight: string, role: string }

export function participantsList (awareness: Awareness): HTMLElement {
  const list = h('ul', { class: 'people', id: 'participants', 'aria-label': 'Participants' })
  const render = (): void => {
    const items: HTMLElement[] = []
    const states = [...awareness.getStates().entries()]
      .filter(([, s]) => s?.user?.name)
      .sort(([a], [b]) => (a === awareness.clientID ? -1 : b === awareness.clientID ? 1 : 0))
    for (const [id, s] of states) {
      const u = s.user as PresenceUser
      const you = id === awareness.clientID ? ' (you)' : ''
      items.push(h('li', { 'data-name': u.name, 'data-role': u.role },
        h('span', { class: 'swatch', style: `background:${u.color}`, 'aria-hidden': 'true' }),
        h('span', { class: 'name', text: u.name + you }),
        h('span', { class: 'role', text: u.role })))
    }
    list.replaceChildren(...items)
  }
  awareness.on('change', render)
  render()
  return list
}
