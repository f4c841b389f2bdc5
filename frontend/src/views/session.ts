// A session page: the shared editor, run controls and console, and side
// panels (participants, history; for the owner also share and people).
// Owns the Yjs doc, the stock y-websocket provider (type-100 handler
// registered) and the Reconnector that fetches a fresh ticket before every
// connect.
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import { api, ApiError, auth, type TicketReply } from '../api'
import { h, errorText } from '../dom'
import { navigate } from '../route'
import type { ConnState } from '../status'
import { colourFor } from '../session/colours'
import { createEditor } from '../session/editor'
import { historyPanel } from '../session/history'
import { encodeClientMsg, parseServerMsg, MESSAGE_ENSEMBLE, type ClientMsg } from '../session/messages'
import { participantsList } from '../session/participants'
import { peoplePanel } from '../session/people'
import { Reconnector } from '../session/reconnect'
import { runPanel } from '../session/runpanel'
import { renameControl } from '../session/rename'
import { sharePanel } from '../session/share'

export interface SessionSource {
  /** Session id when known up front (members). */
  id?: string
  /** The display name for presence. */
  name: string
  /** Fetches a fresh single-use ticket. */
  ticket: () => Promise<TicketReply>
  /** Whether history and share panels can be used (members with a token). */
  member: boolean
}

const MESSAGE_AUTH = 2

export function sessionView (root: HTMLElement, src: SessionSource, setConn: (s: ConnState) => void): () => void {
  const doc = new Y.Doc()
  const text = doc.getText('code')
  const wsBase = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`
  let sessionId = src.id ?? ''
  let role = ''
  let provider: WebsocketProvider | null = null
  const send = (m: ClientMsg): boolean => {
    const ws = provider?.ws
    if (!provider?.wsconnected || !ws || ws.readyState !== WebSocket.OPEN) return false
    ws.send(encodeClientMsg(m) as Uint8Array<ArrayBuffer>)
    return true
  }

  const title = h('h1', { id: 'session-title', text: 'Session' })
  const setTitle = (t: string): void => {
    title.textContent = t
    document.title = `${t} — Ensemble`
  }
  const roleNote = h('p', { class: 'note', id: 'viewer-note', role: 'note', hidden: true, text: 'You are viewing: the code is read-only and only editors can run it.' })
  const fatal = h('p', { class: 'form-error', role: 'alert', id: 'session-fatal' })
  const editorHost = h('div', { class: 'editor', id: 'editor' })
  const runs = runPanel(send)
  const side = h('aside', { class: 'side', 'aria-label': 'Session panels' })
  const layout = h('main', { class: 'session' },
    h('div', { class: 'session-head' }, title, runs.controls),
    roleNote, fatal,
    h('div', { class: 'body' },
      h('div', { class: 'work' },
        h('section', { class: 'pane', 'aria-label': 'Editor' }, editorHost),
        h('section', { class: 'pane', 'aria-label': 'Console' }, runs.output)),
      side))
  root.replaceChildren(layout)

  provider = new WebsocketProvider(wsBase, sessionId || 'pending', doc, { connect: false, disableBc: true, params: {} })
  const awareness = provider.awareness
  const me = { name: src.name, ...colourFor(src.name), role: '' }
  awareness.setLocalStateField('user', me)
  const editor = createEditor(editorHost, text, awareness, () => { runs.run() })
  editor.setReadOnly(true)

  provider.messageHandlers[MESSAGE_ENSEMBLE] = (_enc: unknown, dec: decoding.Decoder) => {
    const msg = parseServerMsg(decoding.readVarString(dec))
    if (msg?.type === 'session.role') setRole(msg.role) // the owner changed it
    else if (msg?.type === 'session.title') setTitle(msg.title)
    else if (msg) runs.handle(msg)
  }
  const defaultAuth = provider.messageHandlers[MESSAGE_AUTH]
  provider.messageHandlers[MESSAGE_AUTH] = (...args: Parameters<typeof defaultAuth>) => {
    setRole('viewer') // the server refused an edit: we are (now) a viewer
    defaultAuth(...args)
  }

  const panel = (name: string, body: HTMLElement, open: boolean): HTMLElement =>
    h('details', { class: 'panel', open }, h('summary', { text: name }), body)
  const count = h('span', { id: 'participant-count' })
  side.append(h('details', { class: 'panel', open: true },
    h('summary', {}, 'Participants ', count),
    participantsList(awareness, (n) => { count.textContent = `(${n})` })))
  let history: ReturnType<typeof historyPanel> | null = null

  function setRole (r: string): void {
    if (r === role) return
    role = r
    const canEdit = r === 'owner' || r === 'editor'
    editor.setReadOnly(!canEdit)
    roleNote.hidden = canEdit
    runs.setCanEdit(canEdit)
    history?.setCanRestore(canEdit)
    awareness.setLocalStateField('user', { ...me, role: r })
  }

  let ended = false
  const reconnector = new Reconnector({
    provider: provider as any,
    fetchTicket: async () => {
      const t = await src.ticket()
      if (!sessionId) sessionId = t.session_id
      if (provider && provider.roomname !== t.session_id) provider.roomname = t.session_id
      return t
    },
    onTicket: (t) => {
      setRole(t.role)
      // Guests cannot read the session itself; the ticket names it.
      if (!src.member && t.title) setTitle(t.title)
    },
    onReconnected: () => {
      // A new awareness clock, so the server shows us again at once (it
      // keeps the old clock as a tombstone after a drop).
      awareness.setLocalStateField('user', { ...me, role })
      const m = runs.tracker.resumeMessage()
      if (m) send(m)
    },
    onFatal: (err) => {
      // The sign-in ended (signed out elsewhere, or expired): the token is
      // gone, so rendering this address again shows the sign-in form, and
      // signing in comes straight back here.
      if (src.member && err instanceof ApiError && err.status === 401) {
        navigate(location.pathname, true)
        return
      }
      fatal.textContent = `Cannot join this session: ${errorText(err)}`
      setConn('offline')
    },
    onEnded: (reason) => {
      // Deleted by its owner: say who, keep the text readable, stop.
      ended = true
      editor.setReadOnly(true)
      runs.setCanEdit(false)
      fatal.textContent = `Session ended: ${reason}.`
      setConn('offline')
    }
  })
  let everOnline = false
  provider.on('status', ({ status }: { status: string }) => {
    const online = status === 'connected'
    everOnline ||= online
    runs.setOnline(online)
    setConn(ended ? 'offline' : online ? 'connected' : everOnline ? 'reconnecting' : 'connecting')
  })
  setConn('connecting')
  void reconnector.start()

  if (src.member && src.id) {
    api.session(src.id).then((s) => {
      setTitle(s.title)
      if (s.role !== 'owner') return
      title.after(renameControl(s.id, title, setTitle))
      const people = peoplePanel(s.id)
      const pp = panel('People', people.el, false) as HTMLDetailsElement
      pp.addEventListener('toggle', () => { if (pp.open) void people.refresh() })
      side.append(panel('Share', sharePanel(s.id, () => { if (pp.open) void people.refresh() }), false), pp)
    }).catch((err) => { fatal.textContent = errorText(err) })
    history = historyPanel(src.id, (code) => {
      doc.transact(() => { text.delete(0, text.length); text.insert(0, code) })
    })
    history.setCanRestore(role === 'owner' || role === 'editor')
    const hp = panel('History', history.el, false)
    hp.addEventListener('toggle', () => { if ((hp as HTMLDetailsElement).open) history?.refresh() })
    side.append(hp)
    runs.onEnded(() => { if ((hp as HTMLDetailsElement).open) history?.refresh() })
  } else {
    title.textContent = 'Shared session' // until the first ticket names it
  }

  return () => {
    reconnector.stop()
    provider?.destroy()
    runs.dispose()
    editor.view.destroy()
    doc.destroy()
    setConn('none')
  }
}

/** Ticket source for a member opening `/s/{id}`. */
export const memberSource = (id: string): SessionSource => ({
  id,
  name: auth.user?.username ?? 'me',
  member: true,
  ticket: async () => await api.sessionTicket(id)
})
