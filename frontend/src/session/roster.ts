// What the People panel shows, without the DOM: members in order (owner
// first, then by name), share links newest first, when a link was made,
// and the sentence after a role change.
import type { LinkInfo, Member } from '../api'

export function orderMembers (members: Member[]): Member[] {
  return [...members].sort((a, b) =>
    a.role === 'owner' ? -1 : b.role === 'owner' ? 1 : a.username.localeCompare(b.username))
}

export function orderLinks (links: LinkInfo[]): LinkInfo[] {
  return [...links].sort((a, b) => b.created_at - a.created_at)
}

/** "14:03" for a time today, "3 Mar, 14:03" otherwise (local time). */
export function madeAt (ms: number, now = Date.now(), locale?: string): string {
  const d = new Date(ms)
  const time = d.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' })
  if (d.toDateString() === new Date(now).toDateString()) return time
  return `${d.toLocaleDateString(locale, { day: 'numeric', month: 'short' })}, ${time}`
}

/**
 * The note after a role change. The server applies it to the member's open
 * pages at once and tells them (`session.role`), so they follow at once.
 */
export function roleChangeText (username: string, role: string): string {
  return role === 'editor'
    ? `${username} is now an editor: they can edit and run.`
    : `${username} is now a viewer: their page is read-only.`
}
