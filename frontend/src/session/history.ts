// The history panel: past runs (author, time, status), a read-only view of
// one run's code and output, and "Restore this code" for editors.
import { api, type RunRecord } from '../api'
import { h, errorText } from '../dom'
import { endingText } from './ending'

export interface HistoryPanel {
  el: HTMLElement
  refresh: () => void
  setCanRestore: (on: boolean) => void
}

export function historyPanel (sessionId: string, restore: (code: string) => void): HistoryPanel {
  let canRestore = false
  let shown: RunRecord | null = null
  const list = h('ol', { class: 'runs', id: 'history-list', 'aria-label': 'Past runs' })
  const detail = h('section', { class: 'run-detail', id: 'run-detail', hidden: true, 'aria-label': 'Run details', tabindex: -1 })
  const error = h('p', { class: 'form-error', role: 'alert' })
  let more: string | null = null
  const moreButton = h('button', { type: 'button', hidden: true, text: 'Older runs', onclick: () => { void load(true) } })

  const showRun = async (id: string): Promise<void> => {
    try {
      const run = await api.run(id)
      shown = run
      const out = h('pre', { class: 'output', 'aria-label': 'Output' })
      for (const c of run.output) out.append(h('span', { class: `s-${c.stream}`, text: c.data }))
      detail.replaceChildren(
        h('h3', { text: `${run.author_name} · ${new Date(run.created_at).toLocaleString()}` }),
        h('p', { class: 'ending', text: endingText(run) }),
        h('pre', { class: 'code', 'aria-label': 'Code that ran', text: run.code }),
        out,
        h('p', { class: 'muted', hidden: !run.truncated, text: 'Output was cut at the limit.' }),
        h('div', { class: 'row' },
          h('button', { type: 'button', class: 'restore', hidden: !canRestore, text: 'Restore this code', onclick: () => { if (shown) restore(shown.code) } }),
          h('button', { type: 'button', text: 'Close', onclick: () => { detail.hidden = true } })))
      detail.hidden = false
      detail.focus()
    } catch (err) { error.textContent = errorText(err) }
  }

  const load = async (append = false): Promise<void> => {
    try {
      const page = await api.runs(sessionId, append ? more ?? undefined : undefined)
      more = page.next
      moreButton.hidden = !more
      const items = page.runs.map((r) => h('li', {},
        h('button', { type: 'button', class: 'run-item', 'data-run': r.id, onclick: () => { void showRun(r.id) } },
          h('span', { class: 'who', text: r.author_name }),
          h('span', { class: 'when', text: new Date(r.created_at).toLocaleTimeString() }),
          h('span', { class: 'what', text: r.status === 'running' || r.status === 'queued' ? r.status : endingText(r) }))))
      if (append) list.append(...items)
      else list.replaceChildren(...(items.length ? items : [h('li', { class: 'muted', text: 'No runs yet.' })]))
      error.textContent = ''
    } catch (err) { error.textContent = errorText(err) }
  }

  return {
    el: h('div', {}, list, moreButton, error, detail),
    refresh: () => { void load() },
    setCanRestore: (on) => {
      canRestore = on
      for (const b of detail.querySelectorAll<HTMLButtonElement>('.restore')) b.hidden = !on
    }
  }
}
