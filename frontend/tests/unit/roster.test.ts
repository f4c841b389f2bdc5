// The People panel's ordering and wording.
import { describe, expect, it } from 'vitest'
import { madeAt, orderLinks, orderMembers, roleChangeText } from '../../src/session/roster'

describe('orderMembers', () => {
  it('puts the owner first, then everyone by name', () => {
    const m = (username: string, role: string) => ({ id: username, username, role })
    const got = orderMembers([m('zoe', 'viewer'), m('Bob', 'editor'), m('teach', 'owner'), m('amy', 'viewer')])
    expect(got.map((x) => x.username)).toEqual(['teach', 'amy', 'Bob', 'zoe'])
  })
})

describe('orderLinks', () => {
  it('lists the newest link first and leaves the input alone', () => {
    const links = [{ link_id: 'a', role: 'viewer', created_at: 1 }, { link_id: 'b', role: 'editor', created_at: 3 }, { link_id: 'c', role: 'viewer', created_at: 2 }]
    expect(orderLinks(links).map((l) => l.link_id)).toEqual(['b', 'c', 'a'])
    expect(links[0].link_id).toBe('a')
  })
})

describe('madeAt', () => {
  const at = (d: number, h: number, m: number) => new Date(2025, 2, d, h, m).getTime()
  it('shows only the time for a link made today', () => {
    expect(madeAt(at(3, 14, 3), at(3, 18, 0), 'en-GB')).toBe('14:03')
  })
  it('adds the day for an older link', () => {
    expect(madeAt(at(1, 9, 5), at(3, 18, 0), 'en-GB')).toBe('1 Mar, 09:05')
  })
})

describe('roleChangeText', () => {
  it('says what the change means on the member\'s open page', () => {
    expect(roleChangeText('sam', 'viewer')).toBe('sam is now a viewer: their page is read-only.')
    expect(roleChangeText('sam', 'editor')).toBe('sam is now an editor: they can edit and run.')
  })
})
