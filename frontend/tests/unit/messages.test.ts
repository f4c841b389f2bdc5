// Type-100 frames: the exact bytes sent, and validation of what arrives.
import { describe, expect, it } from 'vitest'
import * as decoding from 'lib0/decoding'
import { encodeClientMsg, parseServerMsg } from '../../src/session/messages'

describe('encodeClientMsg', () => {
  it('writes varUint 100 then the JSON as a varString (the PROTOCOL.md example)', () => {
    const bytes = encodeClientMsg({ type: 'run.start' })
    const json = '{"type":"run.start"}'
    expect([...bytes.slice(0, 2)]).toEqual([0x64, json.length])
    expect(new TextDecoder().decode(bytes.slice(2))).toBe(json)
  })
  it('round-trips through lib0 for stdin with unicode', () => {
    const d = decoding.createDecoder(encodeClientMsg({ type: 'run.stdin', data: 'héllo ✓\n' }))
    expect(decoding.readVarUint(d)).toBe(100)
    expect(JSON.parse(decoding.readVarString(d))).toEqual({ type: 'run.stdin', data: 'héllo ✓\n' })
    expect(decoding.hasContent(d)).toBe(false)
  })
})

describe('parseServerMsg', () => {
  it('accepts the documented shapes', () => {
    expect(parseServerMsg('{"type":"run.output","run_id":"r","seq":3,"stream":"stderr","data":"x"}'))
      .toEqual({ type: 'run.output', run_id: 'r', seq: 3, stream: 'stderr', data: 'x' })
    expect(parseServerMsg('{"type":"run.exited","run_id":"r","status":"finished","exit_code":0,"reason":"finished","duration_ms":5}'))
      .toMatchObject({ status: 'finished', exit_code: 0, duration_ms: 5 })
    expect(parseServerMsg('{"type":"error","code":"rate_limited","message":"slow down","retry_after":3}'))
      .toMatchObject({ code: 'rate_limited', retry_after: 3 })
    expect(parseServerMsg('{"type":"run.input_wanted","run_id":"r"}'))
      .toEqual({ type: 'run.input_wanted', run_id: 'r' })
    expect(parseServerMsg('{"type":"session.role","role":"viewer"}'))
      .toEqual({ type: 'session.role', role: 'viewer' })
    expect(parseServerMsg('{"type":"session.title","title":"Week 2"}'))
      .toEqual({ type: 'session.title', title: 'Week 2' })
  })
  it('refuses malformed, unknown or mistyped messages', () => {
    expect(parseServerMsg('not json')).toBeNull()
    expect(parseServerMsg('null')).toBeNull()
    expect(parseServerMsg('{"type":"run.fly"}')).toBeNull()
    expect(parseServerMsg('{"type":"run.output","run_id":"r","seq":"3","stream":"stdout","data":"x"}')).toBeNull()
    expect(parseServerMsg('{"type":"run.output","run_id":"r","seq":3,"stream":"tty","data":"x"}')).toBeNull()
    expect(parseServerMsg('{"type":"session.role","role":"owner"}')).toBeNull()
    expect(parseServerMsg('{"type":"session.title","title":""}')).toBeNull()
    expect(parseServerMsg('{"type":"session.title","title":7}')).toBeNull()
  })
})
