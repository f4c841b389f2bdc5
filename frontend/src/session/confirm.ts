// Two-step confirmation for destructive buttons (Remove, Revoke), instead
// of `window.confirm` (which blocks every page of the app and is easy to
// click through): the first press arms the button, which then reads
// "Confirm remove" for a few seconds; a second press while armed acts.
// Escape or the timeout disarms it. `TwoStep` is the DOM-free state
// machine (unit-tested with a fake timer); `confirmButton` wires it to a
// button.
import { h } from '../dom'

/** How long an armed button waits for the second press. */
export const CONFIRM_WINDOW_MS = 4000

export interface Timer {
  set: (f: () => void, ms: number) => unknown
  clear: (handle: unknown) => void
}

const realTimer: Timer = {
  set: (f, ms) => setTimeout(f, ms),
  clear: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}

export class TwoStep {
  private handle: unknown = null
  private isArmed = false

  constructor (private readonly onChange: (armed: boolean) => void,
    private readonly timer: Timer = realTimer, private readonly ms = CONFIRM_WINDOW_MS) {}

  get armed (): boolean { return this.isArmed }

  /** A press: true when the action should run now (the second press in the window). */
  press (): boolean {
    if (this.isArmed) {
      this.disarm()
      return true
    }
    this.isArmed = true
    this.handle = this.timer.set(() => { this.handle = null; this.disarm() }, this.ms)
    this.onChange(true)
    return false
  }

  /** Back to the first step (timeout, Escape, or after acting). */
  disarm (): void {
    if (this.handle !== null) {
      this.timer.clear(this.handle)
      this.handle = null
    }
    if (!this.isArmed) return
    this.isArmed = false
    this.onChange(false)
  }
}

export interface ConfirmButtonOptions {
  /** The button's text, e.g. "Remove"; armed it reads "Confirm remove". */
  text: string
  /** Its accessible name, e.g. "Remove sam"; armed, "Confirm remove sam". */
  label: string
  /** The text while the action runs, e.g. "Removing…". */
  busy: string
  action: () => Promise<void>
  onError: (err: unknown) => void
}

const confirmOf = (s: string): string => `Confirm ${s.charAt(0).toLowerCase()}${s.slice(1)}`

export function confirmButton (o: ConfirmButtonOptions): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'danger', text: o.text, 'aria-label': o.label })
  const show = (text: string, label: string): void => {
    button.textContent = text
    button.setAttribute('aria-label', label)
  }
  const step = new TwoStep((armed) => {
    button.toggleAttribute('data-armed', armed)
    if (armed) show(confirmOf(o.text), confirmOf(o.label))
    else show(o.text, o.label)
  })
  // aria-disabled rather than disabled while busy: a disabled button drops
  // the keyboard focus, which should stay put if the action fails.
  let busy = false
  button.addEventListener('click', () => {
    if (busy || !step.press()) return
    busy = true
    button.setAttribute('aria-disabled', 'true')
    show(o.busy, o.label)
    o.action().catch((err) => {
      show(o.text, o.label)
      o.onError(err)
    }).finally(() => {
      busy = false
      button.removeAttribute('aria-disabled')
    })
  })
  button.addEventListener('keydown', (e: KeyboardEvent) => { if (e.key === 'Escape') step.disarm() })
  return button
}
