// The run console: xterm.js showing a run's transcript. stderr is bright red,
// echoed stdin cyan, our own notices bold. Sequences that would reach
// outside the terminal (OSC 52 clipboard writes, OSC 0/1/2 title changes)
// are swallowed by parser handlers, so they stay inert.
import { Terminal } from '@xterm/xterm'
import { FitAddon } from '@xterm/addon-fit'
import '@xterm/xterm/css/xterm.css'
import type { Stream } from './messages'

/** OSC numbers whose handling we swallow: titles, icon names, clipboard. */
export const INERT_OSC = [0, 1, 2, 52]

export interface Console {
  reset: () => void
  write: (stream: Stream, data: string) => void
  notice: (text: string, bad: boolean) => void
  fit: () => void
  dispose: () => void
}

export function createConsole (parent: HTMLElement): Console {
  const term = new Terminal({
    convertEol: true,
    disableStdin: true,
    cursorBlink: false,
    fontSize: 13,
    scrollback: 5000,
    screenReaderMode: false,
    theme: { background: '#1b1e23', foreground: '#e6e6e6' }
  })
  const fit = new FitAddon()
  term.loadAddon(fit)
  // Swallowed, and counted on the element so tests can see the handlers ran.
  let swallowed = 0
  for (const n of INERT_OSC) {
    term.parser.registerOscHandler(n, () => { parent.dataset.inertOsc = String(++swallowed); return true })
  }
  term.open(parent)
  term.textarea?.setAttribute('aria-label', 'Run output')
  let atLineStart = true
  const raw = (s: string, text: string): void => {
    if (text.length === 0) return
    term.write(s)
    atLineStart = text.endsWith('\n')
  }
  const safeFit = (): void => { try { fit.fit() } catch { /* not visible */ } }
  const ro = new ResizeObserver(safeFit)
  ro.observe(parent)
  safeFit()
  return {
    reset: () => { term.reset(); atLineStart = true },
    write: (stream, data) => {
      if (stream === 'stderr') raw(`\x1b[91m${data}\x1b[0m`, data)
      else if (stream === 'stdin') raw(`\x1b[36m${data}\x1b[0m`, data)
      else raw(data, data)
    },
    notice: (text, bad) => {
      raw(`${atLineStart ? '' : '\n'}\x1b[1;${bad ? 33 : 32}m${text}\x1b[0m\n`, '\n')
    },
    fit: safeFit,
    dispose: () => { ro.disconnect(); term.dispose() }
  }
}
