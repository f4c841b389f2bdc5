// The owner's People panel: the session's members, each (but the owner)
// with a role select and a two-step Remove, and its share links with a
// two-step Revoke. It loads when opened, on Refresh, and after the Share
// panel makes a link. Results and the server's errors show in one status
// line.
import { api, auth, type GrantableRole, type LinkInfo, type Member, type SessionDetail } from '../api'
import { h, errorText } from '../dom'
import { confirmButton } from './confirm'
import { madeAt, orderLinks, orderMembers, roleChangeText } from './roster'

export interface PeoplePanel {
  el: HTMLElement
  /** Reloads members and links (a newer call wins over an older one). */
  refresh: () => Promise<void>
}

const GRANTABLE: GrantableRole[] = ['viewer', 'editor']

export function peoplePanel (sessionId: string): PeoplePanel {
  const status = h('p', { class: 'muted', id: 'people-status', role: 'status', 'aria-live': 'polite' })
  const say = (text: string, error = false): void => {
    status.textContent = text
    status.className = error ? 'form-error' : 'muted'
  }
  const membersHead = h('h3', { id: 'members-head', text: 'Members' })
  const members = h('ul', { class: 'people manage', id: 'members', 'aria-labelledby': 'members-head', tabindex: -1 })
  const linksHead = h('h3', { id: 'links-head', text: 'Share links' })
  const links = h('ul', { class: 'people manage', id: 'links', 'aria-labelledby': 'links-head', tabindex: -1 })
  let linkCount = 0
  let loadFailed = false
  let generation = 0

  const countMembers = (): void => {
    membersHead.textContent = `Members (${members.querySelectorAll('li[data-user-id]').length})`
  }
  const noLinks = (): HTMLElement => h('li', { class: 'muted', text: 'No share links. Make one in Share.' })

  function memberRow (m: Member): HTMLElement {
    const you = m.id === auth.user?.id ? ' (you)' : ''
    const li = h('li', { 'data-user-id': m.id, 'data-user': m.username, 'data-role': m.role },
      h('span', { class: 'name', text: m.username + you }))
    if (m.role === 'owner') {
      li.append(h('span', { class: 'role', text: 'owner' }))
      return li
    }
    const select = h('select', { 'aria-label': `Role for ${m.username}` },
      ...GRANTABLE.map((r) => h('option', { value: r, text: r })))
    select.value = m.role
    select.addEventListener('change', () => {
      const role = select.value as GrantableRole
      const focused = document.activeElement === select
      select.disabled = true
      api.setMemberRole(sessionId, m.id, role).then((r) => {
        m.role = r.role
        say(roleChangeText(m.username, r.role))
      }).catch((err) => {
        say(`Could not change ${m.username}'s role: ${errorText(err)}`, true)
      }).finally(() => {
        select.value = m.role
        li.dataset.role = m.role
        select.disabled = false
        if (focused) select.focus()
      })
    })
    li.append(select, confirmButton({
      text: 'Remove',
      label: `Remove ${m.username}`,
      busy: 'Removing…',
      action: async () => {
        await api.removeMember(sessionId, m.id)
        li.remove()
        countMembers()
        members.focus()
        say(`Removed ${m.username}.` +
          (linkCount > 0 ? ' They can join again through a share link until you revoke it.' : ''))
      },
      onError: (err) => { say(`Could not remove ${m.username}: ${errorText(err)}`, true) }
    }))
    return li
  }

  function linkRow (l: LinkInfo): HTMLElement {
    const when = madeAt(l.created_at)
    const what = `${l.role} link made ${when}`
    const li = h('li', { 'data-link-id': l.link_id, 'data-role': l.role },
      h('span', { class: 'name', text: `${l.role.charAt(0).toUpperCase()}${l.role.slice(1)} link` }),
      h('time', { class: 'role', datetime: new Date(l.created_at).toISOString(), text: when }))
    li.append(confirmButton({
      text: 'Revoke',
      label: `Revoke ${what}`,
      busy: 'Revoking…',
      action: async () => {
        await api.revokeLink(sessionId, l.link_id)
        li.remove()
        linkCount--
        if (linkCount === 0) links.replaceChildren(noLinks())
        links.focus()
        say(`Revoked the ${what}: it no longer works.`)
      },
      onError: (err) => { say(`Could not revoke the ${what}: ${errorText(err)}`, true) }
    }))
    return li
  }

  function render (s: SessionDetail): void {
    members.replaceChildren(...orderMembers(s.members).map(memberRow))
    countMembers()
    const ls = orderLinks(s.links ?? [])
    linkCount = ls.length
    links.replaceChildren(...(ls.length ? ls.map(linkRow) : [noLinks()]))
  }

  const refresh = async (): Promise<void> => {
    const mine = ++generation
    el.setAttribute('aria-busy', 'true')
    try {
      const s = await api.session(sessionId)
      if (mine !== generation) return
      render(s)
      if (loadFailed) say('')
      loadFailed = false
    } catch (err) {
      if (mine !== generation) return
      loadFailed = true
      say(`Could not load members and links: ${errorText(err)}`, true)
    } finally {
      if (mine === generation) el.removeAttribute('aria-busy')
    }
  }

  const el = h('div', { class: 'people-panel' },
    h('div', { class: 'people-head' }, membersHead,
      h('button', { type: 'button', id: 'people-refresh', text: 'Refresh', 'aria-label': 'Refresh members and links', onclick: () => { void refresh() } })),
    status, members, linksHead, links)
  return { el, refresh }
}
