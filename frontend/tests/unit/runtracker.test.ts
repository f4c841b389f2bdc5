// The run tracker: phases, seq de-duplication on replays, new runs clearing
// the console, resume messages and a run lost across a server restart.
import { describe, expect, it } from 'vitest'
import { RunTracker, type RunSink } from '../../src/session/runtracker'
import type { RunMsg } from '../../src/session/messages'

function setup () {
  const log: string[] = []
  const sink: RunSink = {
    reset: (id) => log.push(`reset ${id}`),
    write: (s, d) => log.push(`${s}:${d}`),
    notice: (t, bad) => log.push(`${bad ? '!' : ''}${t}`),
    changed: () => {}
  }
  let now = 1000
  const t = new RunTracker(sink, () => now)
  return { t, log, advance: (ms: number) => { now += ms } }
}

const out = (seq: number, data: string, run = 'r1'): RunMsg => ({ type: 'run.output', run_id: run, seq, stream: 'stdout', data })

describe('RunTracker', () => {
  it('follows queued → running → ended and says how it ended', () => {
    const { t, log, advance } = setup()
    t.handle({ type: 'run.queued', run_id: 'r1', position: 2 })
    expect(t.phase).toBe('queued')
    expect(t.position).toBe(2)
    t.handle({ type: 'run.started', run_id: 'r1', by: 'alice' })
    advance(700)
    expect(t.elapsedMs()).toBe(700)
    t.handle(out(1, 'hi\n'))
    t.handle({ type: 'run.exited', run_id: 'r1', status: 'finished', exit_code: 0, reason: 'finished', duration_ms: 412 })
    expect(t.phase).toBe('ended')
    expect(t.elapsedMs()).toBe(412)
    expect(log).toEqual(['reset r1', 'stdout:hi\n', 'Finished in 0.4 s'])
  })

  it('drops replayed output and a replayed ending', () => {
    const { t, log } = setup()
    t.handle({ type: 'run.started', run_id: 'r1', by: 'a' })
    t.handle(out(1, 'a'))
    t.handle(out(2, 'b'))
    // Reconnect: the server replays from the start.
    t.handle({ type: 'run.started', run_id: 'r1', by: 'a' })
    t.handle(out(1, 'a'))
    t.handle(out(2, 'b'))
    t.handle(out(3, 'c'))
    const end: RunMsg = { type: 'run.exited', run_id: 'r1', status: 'cancelled', exit_code: null, reason: 'cancelled by bob', duration_ms: 1 }
    t.handle(end)
    t.handle(end)
    expect(log).toEqual(['reset r1', 'stdout:a', 'stdout:b', 'stdout:c', '!Cancelled by bob'])
  })

  it('knows when the program waits for input, until input is sent or the run ends', () => {
    const { t } = setup()
    t.handle({ type: 'run.started', run_id: 'r1', by: 'a' })
    t.handle(out(1, 'name? '))
    t.handle({ type: 'run.input_wanted', run_id: 'r1' })
    expect(t.waiting).toBe(true)
    // Other output does not answer it; the echo of typed input does.
    t.handle(out(2, 'tick\n'))
    expect(t.waiting).toBe(true)
    t.handle({ type: 'run.output', run_id: 'r1', seq: 3, stream: 'stdin', data: 'bob\n' })
    expect(t.waiting).toBe(false)
    // The server forgets a hint once input is recorded: another is a new wait.
    t.handle({ type: 'run.input_wanted', run_id: 'r1' })
    expect(t.waiting).toBe(true)
    t.handle({ type: 'run.exited', run_id: 'r1', status: 'finished', exit_code: 0, reason: 'finished', duration_ms: 5 })
    expect(t.waiting).toBe(false)
    // A new run starts without a wait.
    t.handle({ type: 'run.input_wanted', run_id: 'r2' })
    t.handle({ type: 'run.started', run_id: 'r3', by: 'a' })
    expect(t.waiting).toBe(false)
  })

  it('clears the console for a new run', () => {
    const { t, log } = setup()
    t.handle(out(1, 'old', 'r1'))
    t.handle({ type: 'run.queued', run_id: 'r2', position: 1 })
    t.handle(out(1, 'new', 'r2'))
    expect(log).toEqual(['reset r1', 'stdout:old', 'reset r2', 'stdout:new'])
    expect(t.lastSeq).toBe(1)
  })

  it('asks to resume only an active run, from the last seq', () => {
    const { t } = setup()
    expect(t.resumeMessage()).toBeNull()
    t.handle({ type: 'run.started', run_id: 'r1', by: 'a' })
    t.handle(out(1, 'a'))
    t.handle(out(2, 'b'))
    expect(t.resumeMessage()).toEqual({ type: 'run.resume', run_id: 'r1', after_seq: 2 })
  })

  it('marks a run lost when the resumed run is no longer active', () => {
    const { t, log } = setup()
    t.handle({ type: 'run.started', run_id: 'r1', by: 'a' })
    t.resumeMessage()
    t.handle({ type: 'error', code: 'run_not_active', message: 'that run is not active' })
    expect(t.phase).toBe('ended')
    expect(log.at(-1)).toMatch(/^!The run ended while the connection was lost/)
  })

  it('shows other errors with their retry time and keeps the phase', () => {
    const { t, log } = setup()
    t.handle({ type: 'error', code: 'rate_limited', message: 'too many runs', retry_after: 12 })
    expect(t.phase).toBe('idle')
    expect(log).toEqual(['!too many runs (try again in 12 s)'])
  })
})
