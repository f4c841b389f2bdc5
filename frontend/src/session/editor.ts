// The CodeMirror 6 Python editor bound to the shared `Y.Text` through
// y-codemirror.next (remote cursors and selections with names and colours).
// Read-only for viewers; Ctrl/Cmd+Enter runs.
import { EditorView, basicSetup } from 'codemirror'
import { python } from '@codemirror/lang-python'
import { Compartment, EditorState, Prec } from '@codemirror/state'
import { keymap } from '@codemirror/view'
import { yCollab } from 'y-codemirror.next'
import * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'

export interface Editor {
  view: EditorView
  setReadOnly: (ro: boolean) => void
}

export function createEditor (parent: HTMLElement, text: Y.Text, awareness: Awareness, onRun: () => void): Editor {
  const access = new Compartment()
  const ro = (on: boolean) => [EditorState.readOnly.of(on), EditorView.editable.of(!on)]
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text.toString(),
      extensions: [
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run: () => { onRun(); return true } }])),
        basicSetup,
        python(),
        EditorView.contentAttributes.of({ 'aria-label': 'Python code', 'aria-multiline': 'true' }),
        access.of(ro(false)),
        yCollab(text, awareness, { undoManager: new Y.UndoManager(text) })
      ]
    })
  })
  return {
    view,
    setReadOnly: (on) => { view.dispatch({ effects: access.reconfigure(ro(on)) }) }
  }
}
