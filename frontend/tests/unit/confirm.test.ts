// The two-step confirm behind Remove and Revoke: the first press only
// arms, a second press within the window acts (once), and the timeout or
// a disarm goes back to the first step.
import { describe, expect, it } from 'vitest'
import { CONFIRM_WINDOW_MS, TwoStep, type Timer } from '../../src/session/confirm'

function setup () {
  const pending = new Map<number, () => void>()
  let next = 0
  const timer: Timer = {
    set: (f, ms) => { expect(ms).toBe(CONFIRM_WINDOW_MS); pending.set(++next, f); return next },
    clear: (handle) => { pending.delete(handle as number) }
  }
  const changes: boolean[] = []
  const step = new TwoStep((armed) => changes.push(armed), timer)
  const expire = (): void => { for (const [id, f] of [...pending]) { pending.delete(id); f() } }
  return { step, changes, pending, expire }
}

describe('TwoStep', () => {
  it('arms on the first press and acts on the second', () => {
    const { step, changes, pending } = setup()
    expect(step.press()).toBe(false)
    expect(step.armed).toBe(true)
    expect(step.press()).toBe(true)
    expect(step.armed).toBe(false)
    expect(changes).toEqual([true, false])
    expect(pending.size).toBe(0) // the timeout was cancelled
  })

  it('does not act on a press after the window closed', () => {
    const { step, changes, expire } = setup()
    step.press()
    expire()
    expect(step.armed).toBe(false)
    expect(step.press()).toBe(false) // arms again instead of acting
    expect(changes).toEqual([true, false, true])
  })

  it('acts once per arming: a third press arms again', () => {
    const { step } = setup()
    expect([step.press(), step.press(), step.press()]).toEqual([false, true, false])
  })

  it('disarm cancels the timeout and is quiet when not armed', () => {
    const { step, changes, pending } = setup()
    step.disarm()
    expect(changes).toEqual([])
    step.press()
    step.disarm()
    expect(pending.size).toBe(0)
    expect(changes).toEqual([true, false])
    expect(step.press()).toBe(false)
  })
})
