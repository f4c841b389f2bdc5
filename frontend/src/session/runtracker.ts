// Follows the session's current run from type-100 events: which run the
// console shows, its phase, the last output seq (to drop replayed
// duplicates after a reconnect and to resume), and the ending sentence.
// Pure (no DOM, no socket): the console and status line are a `RunSink`.
import type { RunMsg, Stream } from './messages'
import { endingText, endedBadly, type Ending } from './ending'

export type Phase = 'idle' | 'queued' | 'running' | 'ended'

export interface RunSink {
  /** A different run starts being shown: clear the console. */
  reset: (runId: string) => void
  /** Transcript text, in seq order, each seq once. */
  write: (stream: Stream, data: string) => void
  /** A line of our own (ending, notices), `bad` for warnings. */
  notice: (text: string, bad: boolean) => void
  /** Phase, position or author changed. */
  changed: () => void
}

export class RunTracker {
  runId: string | null = null
  phase: Phase = 'idle'
  position = 0
  by = ''
  lastSeq = 0
  /** Client clock when the run was seen starting (for the timer). */
  startedAt = 0
  ending: Ending | null = null
  /** The program waits for input (until someone sends some). */
  waiting = false
  /** The run a `run.resume` was sent for, until its answer. */
  private resumeFor: string | null = null

  constructor (private readonly sink: RunSink, private readonly now: () => number = Date.now) {}

  private follow (runId: string): void {
    if (runId === this.runId) return
    this.runId = runId
    this.phase = 'idle'
    this.lastSeq = 0
    this.position = 0
    this.by = ''
    this.ending = null
    this.waiting = false
    this.sink.reset(runId)
  }

  /** Handles one server event. */
  handle (msg: RunMsg): void {
    if (msg.type === 'error') {
      if (msg.code === 'run_not_active' && this.resumeFor !== null && this.resumeFor === this.runId) {
        this.resumeFor = null
        if (this.phase === 'queued' || this.phase === 'running') this.lost()
        return
      }
      const wait = msg.retry_after ? ` (try again in ${msg.retry_after} s)` : ''
      this.sink.notice(`${msg.message}${wait}`, true)
      return
    }
    // A finished run that is replayed again (on every join) changes nothing.
    if (msg.run_id === this.runId && this.phase === 'ended') return
    this.follow(msg.run_id)
    switch (msg.type) {
      case 'run.queued':
        if (this.phase === 'running') return
        this.phase = 'queued'
        this.position = msg.position
        break
      case 'run.started':
        if (this.phase !== 'running') this.startedAt = this.now()
        this.phase = 'running'
        this.by = msg.by
        break
      case 'run.output':
        if (msg.seq <= this.lastSeq) return
        this.lastSeq = msg.seq
        this.sink.write(msg.stream, msg.data)
        if (this.phase !== 'running') { this.phase = 'running'; this.startedAt = this.now() } else if (!(msg.stream === 'stdin' && this.waiting)) return
        if (msg.stream === 'stdin') this.waiting = false
        break
      case 'run.input_wanted':
        if (this.waiting) return
        this.waiting = true
        if (this.phase !== 'running') { this.phase = 'running'; this.startedAt = this.now() }
        break
      case 'run.exited':
        this.waiting = false
        this.phase = 'ended'
        this.ending = msg
        this.sink.notice(endingText(msg), endedBadly(msg))
        break
    }
    this.sink.changed()
  }

  /** The run.resume to send after a reconnect, if a run is in flight. */
  resumeMessage (): { type: 'run.resume', run_id: string, after_seq: number } | null {
    if (this.runId === null || (this.phase !== 'queued' && this.phase !== 'running')) return null
    this.resumeFor = this.runId
    return { type: 'run.resume', run_id: this.runId, after_seq: this.lastSeq }
  }

  /** The run is gone from the server (it restarted) without an end event. */
  lost (): void {
    this.phase = 'ended'
    this.ending = null
    this.sink.notice('The run ended while the connection was lost (see History for its record).', true)
    this.sink.changed()
  }

  /** Seconds shown by the run timer. */
  elapsedMs (): number {
    if (this.phase === 'running') return this.now() - this.startedAt
    return this.ending?.duration_ms ?? 0
  }
}
