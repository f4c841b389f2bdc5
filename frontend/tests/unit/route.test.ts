// The app's addresses.
import { describe, expect, it } from 'vitest'
import { joinUrl, parseRoute, sessionPath } from '../../src/route'

describe('routes', () => {
  it('parses the three addresses', () => {
    expect(parseRoute('/')).toEqual({ name: 'home' })
    expect(parseRoute('/s/abc123')).toEqual({ name: 'session', id: 'abc123' })
    expect(parseRoute('/join/tok-EN_x/')).toEqual({ name: 'join', link: 'tok-EN_x' })
    expect(parseRoute('/s/')).toEqual({ name: 'home' })
    expect(parseRoute('/s/a/b')).toEqual({ name: 'home' })
  })
  it('builds paths that parse back', () => {
    expect(parseRoute(sessionPath('x y'))).toEqual({ name: 'session', id: 'x y' })
    expect(joinUrl('http://h:1', 'L')).toBe('http://h:1/join/L')
  })
})
