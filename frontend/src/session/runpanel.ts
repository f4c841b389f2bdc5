// Run controls and the console: Run / Stop, queue position and run timer,
// the stdin line while a run is going, and the xterm console fed by a
// `RunTracker`. Sends commands through `send`.
import { h } from '../dom'
import { createConsole, type Console } from './console'
import { endingText, formatDuration } from './ending'
import type { ClientMsg, RunMsg } from './messages'
import { RunTracker } from './runtracker'

export interface RunPanel {
  controls: HTMLElement
  output: HTMLElement
  tracker: RunTracker
  handle: (m: RunMsg) => void
  run: () => void
  setCanEdit: (on: boolean) => void
  setOnline: (on: boolean) => void
  onEnded: (f: () => void) => void
  dispose: () => void
}

export function runPanel (send: (m: ClientMsg) => boolean): RunPanel {
  let canEdit = false
  let online = false
  let ended: () => void = () => {}
  const runBtn = h('button', { type: 'button', id: 'run', class: 'primary', 'aria-keyshortcuts': 'Control+Enter Meta+Enter', title: 'Run (Ctrl/Cmd+Enter)', text: '▶ Run' })
  const stopBtn = h('button', { type: 'button', id: 'stop', hidden: true, text: '■ Stop' })
  const state = h('span', { id: 'run-state', class: 'run-state', role: 'status', 'aria-live': 'polite' })
  const timer = h('span', { id: 'run-timer', class: 'timer', 'aria-hidden': 'true' })
  const stdin = h('input', { id: 'stdin', autocomplete: 'off', 'aria-label': 'Input for the program', placeholder: 'Type input, press Enter' })
  const stdinForm = h('form', { class: 'stdin row', hidden: true }, stdin, h('button', { type: 'submit', text: 'Send' }))
  const term = h('div', { class: 'terminal', id: 'console' })
  let con: Console | null = null
  const pending: Array<() => void> = []
  const withConsole = (f: (c: Console) => void): void => { if (con) f(con); else pending.push(() => f(con!)) }

  const tracker = new RunTracker({
    reset: () => { withConsole((c) => c.reset()) },
    write: (stream, data) => { withConsole((c) => c.write(stream, data)) },
    notice: (text, bad) => {
      withConsole((c) => c.notice(text, bad))
      state.textContent = text
    },
    changed: () => { paint(); if (tracker.phase === 'ended') ended() }
  })

  const paint = (): void => {
    const active = tracker.phase === 'queued' || tracker.phase === 'running'
    runBtn.hidden = !canEdit
    runBtn.disabled = active || !online
    stopBtn.hidden = !canEdit || !active
    // The input line stays during the whole run (a program reading fd 0
    // directly gives no hint) and stands out while input is awaited.
    const waiting = tracker.phase === 'running' && tracker.waiting
    const wasWaiting = stdinForm.hasAttribute('data-waiting')
    stdinForm.hidden = !canEdit || tracker.phase !== 'running'
    stdinForm.toggleAttribute('data-waiting', waiting)
    stdin.placeholder = waiting ? 'The program is waiting for input: type, press Enter' : 'Type input, press Enter'
    // Take the focus only from nothing or the Run button, never from the editor.
    const idle = document.activeElement === document.body || document.activeElement === runBtn
    if (waiting && !wasWaiting && !stdinForm.hidden && idle) stdin.focus()
    if (tracker.phase === 'queued') state.textContent = `Queued — position ${tracker.position}`
    else if (waiting) state.textContent = 'Waiting for input'
    else if (tracker.phase === 'running') state.textContent = `Running${tracker.by ? ` (started by ${tracker.by})` : ''}`
    else if (tracker.phase === 'ended') state.textContent = tracker.ending ? endingText(tracker.ending) : 'Run ended while disconnected'
    state.dataset.phase = tracker.phase
    tick()
  }
  const tick = (): void => {
    const active = tracker.phase === 'running'
    timer.textContent = active ? formatDuration(tracker.elapsedMs()) : ''
  }
  const interval = setInterval(tick, 100)

  const run = (): void => {
    if (!canEdit || tracker.phase === 'queued' || tracker.phase === 'running') return
    if (!send({ type: 'run.start' })) state.textContent = 'Not connected — the run was not started'
  }
  runBtn.addEventListener('click', run)
  stopBtn.addEventListener('click', () => { send({ type: 'run.cancel' }) })
  stdinForm.addEventListener('submit', (e) => {
    e.preventDefault()
    if (send({ type: 'run.stdin', data: stdin.value + '\n' })) stdin.value = ''
  })
  // The console needs a laid-out parent; open it on the next frame.
  let disposed = false
  requestAnimationFrame(() => {
    if (disposed) return
    con = createConsole(term)
    for (const f of pending.splice(0)) f()
  })

  return {
    controls: h('div', { class: 'run-controls row' }, runBtn, stopBtn, state, timer),
    output: h('div', { class: 'output-pane' }, term, stdinForm),
    tracker,
    handle: (m) => { tracker.handle(m) },
    run,
    setCanEdit: (on) => { canEdit = on; paint() },
    setOnline: (on) => { online = on; paint() },
    onEnded: (f) => { ended = f },
    dispose: () => { disposed = true; clearInterval(interval); con?.dispose() }
  }
}
