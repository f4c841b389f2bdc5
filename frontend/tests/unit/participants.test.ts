import { describe, expect, it } from 'vitest'
import { orderParticipants } from '../../src/session/participants'

const user = (name: string, role: string) => ({ user: { name, role, color: '#000', colorLight: '#fff' } })

describe('orderParticipants', () => {
  it('puts you first, then owner, editors and viewers, each by name', () => {
    const states: Array<[number, any]> = [
      [5, user('zoe', 'viewer')],
      [4, user('amy', 'viewer')],
      [3, user('bob', 'editor')],
      [2, user('teacher', 'owner')],
      [9, user('me', 'viewer')],
      [7, {}], // no user yet: not listed
      [8, user('', 'viewer')]
    ]
    expect(orderParticipants(states, 9).map(([, u]) => u.name)).toEqual(['me', 'teacher', 'bob', 'amy', 'zoe'])
  })
  it('keeps two tabs of one person apart, in a stable order', () => {
    const states: Array<[number, any]> = [[12, user('sam', 'editor')], [11, user('sam', 'editor')]]
    expect(orderParticipants(states, 1).map(([id]) => id)).toEqual([11, 12])
  })
})
