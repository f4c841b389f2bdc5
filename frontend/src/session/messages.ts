// Ensemble's own websocket channel (y-websocket message type 100): encoding
// client commands and decoding server events (runs, role, title). Pure;
// unit-tested.
import * as encoding from 'lib0/encoding'

/** The message type of Ensemble's JSON channel. */
export const MESSAGE_ENSEMBLE = 100

export type ClientMsg =
  | { type: 'run.start' }
  | { type: 'run.cancel' }
  | { type: 'run.stdin', data: string }
  | { type: 'run.resume', run_id: string, after_seq: number }

export type Stream = 'stdout' | 'stderr' | 'stdin'

/** What the run panel and tracker handle. */
export type RunMsg =
  | { type: 'run.queued', run_id: string, position: number }
  | { type: 'run.started', run_id: string, by: string }
  | { type: 'run.output', run_id: string, seq: number, stream: Stream, data: string }
  | { type: 'run.input_wanted', run_id: string }
  | { type: 'run.exited', run_id: string, status: string, exit_code: number | null, reason: string, duration_ms: number }
  | { type: 'error', code: string, message: string, retry_after?: number }

/** Every server event: run events, and this connection's new role. */
export type ServerMsg = RunMsg
  | { type: 'session.role', role: 'viewer' | 'editor' }
  | { type: 'session.title', title: string }

/** One websocket frame carrying `msg` on the type-100 channel. */
export function encodeClientMsg (msg: ClientMsg): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MESSAGE_ENSEMBLE)
  encoding.writeVarString(e, JSON.stringify(msg))
  return encoding.toUint8Array(e)
}

const isStr = (v: unknown): v is string => typeof v === 'string'
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** Parses a type-100 JSON text; null for anything malformed or unknown. */
export function parseServerMsg (json: string): ServerMsg | null {
  let m: any
  try { m = JSON.parse(json) } catch { return null }
  if (m === null || typeof m !== 'object') return null
  switch (m.type) {
    case 'run.queued':
      return isStr(m.run_id) && isNum(m.position) ? m : null
    case 'run.started':
      return isStr(m.run_id) && isStr(m.by) ? m : null
    case 'run.output':
      return isStr(m.run_id) && isNum(m.seq) && isStr(m.data) &&
        ['stdout', 'stderr', 'stdin'].includes(m.stream) ? m : null
    case 'run.input_wanted':
      return isStr(m.run_id) ? m : null
    case 'run.exited':
      return isStr(m.run_id) && isStr(m.status) && isStr(m.reason) &&
        (m.exit_code === null || m.exit_code === undefined || isNum(m.exit_code))
        ? { ...m, exit_code: m.exit_code ?? null, duration_ms: isNum(m.duration_ms) ? m.duration_ms : 0 }
        : null
    case 'error':
      return isStr(m.code) && isStr(m.message) ? m : null
    case 'session.role':
      return m.role === 'viewer' || m.role === 'editor' ? m : null
    case 'session.title':
      return isStr(m.title) && m.title.length > 0 && m.title.length <= 400 ? m : null
    default:
      return null
  }
}
