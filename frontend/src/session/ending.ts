// The plain sentence that ends a run ("Finished in 0.4 s", "Time limit (10 s)
// exceeded", "Cancelled by alice") and duration formatting. Pure; unit-tested.

/** "0.4 s", "12 s", "2 min 5 s". */
export function formatDuration (ms: number): string {
  const s = Math.max(0, ms) / 1000
  if (s < 10) return `${(Math.round(s * 10) / 10).toFixed(1)} s`
  if (s < 60) return `${Math.round(s)} s`
  const whole = Math.round(s)
  return `${Math.floor(whole / 60)} min ${whole % 60} s`
}

const capitalise = (t: string): string => t.charAt(0).toUpperCase() + t.slice(1)

export interface Ending {
  status: string
  exit_code: number | null
  reason: string
  duration_ms: number
}

/** How a run ended, in one sentence. */
export function endingText (e: Ending): string {
  const took = formatDuration(e.duration_ms)
  if (e.status === 'finished') {
    if (e.exit_code === 0 || e.exit_code === null) return `Finished in ${took}`
    return `Exited with code ${e.exit_code} after ${took}`
  }
  if (e.status === 'interrupted') return 'Interrupted: the server stopped during the run'
  const reason = e.reason.trim()
  if (reason && reason.toLowerCase() !== e.status) return capitalise(reason)
  return capitalise(e.status)
}

/** Whether the ending is a failure worth showing in a warning colour. */
export function endedBadly (e: Ending): boolean {
  return !(e.status === 'finished' && (e.exit_code === 0 || e.exit_code === null))
}
