// The participants list, from awareness: each person's name, colour, role.
// Awareness changes on every cursor move; the list is rebuilt only when who
// is here (or their name, colour or role) changed, so a classroom of
// hundreds does not redraw hundreds of rows per keystroke of the teacher.
import type { Awareness } from 'y-protocols/awareness'
import { h } from '../dom'

export interface PresenceUser { name: string, color: string, colorLight: string, role: string }

const RANK: Record<string, number> = { owner: 0, editor: 1, viewer: 2 }

/** You first, then owner, editors, viewers, each by name. Pure; unit-tested. */
export function orderParticipants (states: Iterable<[number, any]>, self: number): Array<[number, PresenceUser]> {
  const people: Array<[number, PresenceUser]> = []
  for (const [id, s] of states) {
    const u = s?.user
    if (u && typeof u.name === 'string' && u.name) people.push([id, u as PresenceUser])
  }
  const rank = ([id, u]: [number, PresenceUser]): number => id === self ? -1 : RANK[u.role] ?? 3
  return people.sort((a, b) => rank(a) - rank(b) || a[1].name.localeCompare(b[1].name) || a[0] - b[0])
}

export function participantsList (awareness: Awareness, onCount?: (n: number) => void): HTMLElement {
  const list = h('ul', { class: 'people participants', id: 'participants', 'aria-label': 'Participants' })
  let shown = ''
  const render = (): void => {
    const people = orderParticipants(awareness.getStates().entries(), awareness.clientID)
    const key = JSON.stringify(people.map(([id, u]) => [id, u.name, u.color, u.role]))
    if (key === shown) return
    shown = key
    list.replaceChildren(...people.map(([id, u]) =>
      h('li', { 'data-name': u.name, 'data-role': u.role },
        h('span', { class: 'swatch', style: `background:${u.color}`, 'aria-hidden': 'true' }),
        h('span', { class: 'name', text: u.name + (id === awareness.clientID ? ' (you)' : '') }),
        h('span', { class: 'role', text: u.role }))))
    onCount?.(people.length)
  }
  awareness.on('change', render)
  render()
  return list
}
