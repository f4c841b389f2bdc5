// The owner's Rename control: a button beside the title that swaps the
// title for a field. Enter or Save renames (the server tells everyone in
// the session, so their headers change at once); Escape or Cancel puts the
// title back. The server's refusal (an empty title, say) shows inline.
import { api } from '../api'
import { h, errorText } from '../dom'

export function renameControl (sessionId: string, titleEl: HTMLElement, setTitle: (t: string) => void): HTMLElement {
  const input = h('input', { id: 'rename-title', maxlength: 100, required: true, 'aria-label': 'New title' })
  const error = h('span', { class: 'form-error', role: 'alert', id: 'rename-error' })
  const save = h('button', { type: 'submit', class: 'primary', text: 'Save' })
  const form = h('form', { class: 'rename', hidden: true }, input, save,
    h('button', { type: 'button', text: 'Cancel', onclick: () => { close() } }), error)
  const button = h('button', {
    type: 'button',
    id: 'rename',
    text: 'Rename',
    'aria-label': 'Rename this session',
    onclick: () => {
      input.value = titleEl.textContent ?? ''
      show(true)
      input.focus()
      input.select()
    }
  })
  const show = (editing: boolean): void => {
    form.hidden = !editing
    titleEl.hidden = editing
    button.hidden = editing
    error.textContent = ''
  }
  const close = (): void => { show(false); button.focus() }
  input.addEventListener('keydown', (e: KeyboardEvent) => { if (e.key === 'Escape') close() })
  form.addEventListener('submit', (e: Event) => {
    e.preventDefault()
    save.disabled = true
    api.renameSession(sessionId, input.value).then((s) => {
      setTitle(s.title)
      close()
    }).catch((err) => { error.textContent = errorText(err) })
      .finally(() => { save.disabled = false })
  })
  return h('span', { class: 'rename-wrap' }, button, form)
}
