// The plain sentences that end a run, built from run.exited.
import { describe, expect, it } from 'vitest'
import { endingText, endedBadly, formatDuration } from '../../src/session/ending'

describe('endingText', () => {
  it('says how long a clean run took', () => {
    expect(endingText({ status: 'finished', exit_code: 0, reason: 'finished', duration_ms: 412 })).toBe('Finished in 0.4 s')
  })
  it('names a non-zero exit code', () => {
    expect(endingText({ status: 'finished', exit_code: 1, reason: 'exited with code 1', duration_ms: 1500 })).toBe('Exited with code 1 after 1.5 s')
  })
  it('uses the server reason for limits and cancels, capitalised', () => {
    expect(endingText({ status: 'killed', exit_code: null, reason: 'time limit (10 s) exceeded', duration_ms: 10000 })).toBe('Time limit (10 s) exceeded')
    expect(endingText({ status: 'cancelled', exit_code: null, reason: 'cancelled by alice', duration_ms: 300 })).toBe('Cancelled by alice')
    expect(endingText({ status: 'killed', exit_code: null, reason: 'memory limit (256 MiB) exceeded', duration_ms: 300 })).toBe('Memory limit (256 MiB) exceeded')
  })
  it('explains an interrupted run and falls back to the status', () => {
    expect(endingText({ status: 'interrupted', exit_code: null, reason: '', duration_ms: 0 })).toMatch(/server stopped/)
    expect(endingText({ status: 'failed', exit_code: null, reason: '', duration_ms: 0 })).toBe('Failed')
  })
  it('marks everything but a clean finish as bad', () => {
    expect(endedBadly({ status: 'finished', exit_code: 0, reason: '', duration_ms: 1 })).toBe(false)
    expect(endedBadly({ status: 'finished', exit_code: 2, reason: '', duration_ms: 1 })).toBe(true)
    expect(endedBadly({ status: 'cancelled', exit_code: null, reason: '', duration_ms: 1 })).toBe(true)
  })
})

describe('formatDuration', () => {
  it('rounds sensibly at each scale', () => {
    expect(formatDuration(0)).toBe('0.0 s')
    expect(formatDuration(9949)).toBe('9.9 s')
    expect(formatDuration(12400)).toBe('12 s')
    expect(formatDuration(125000)).toBe('2 min 5 s')
  })
})
