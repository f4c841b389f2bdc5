// The browser suite of issue 7: the built app, served by the real binary,
// driven in Debian's Chromium. Alice (owner) and Bob (editor, via a link)
// share a session; Carol joins as a guest viewer. Runs stream live, input
// works, errors show, history lists runs, and a server restart under open
// pages heals by itself. Screenshots go to test-artifacts/.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  apiCall, artifact, consoleText, editorText, launchBrowser, PASSWORD, signUpInPage,
  startServer, typeCode, until
} from './harness.mjs'

let server, browser, alice, bob, carol, sessionUrl, editorLink, viewerLink

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 375, height: 812 }

before(async () => {
  server = await startServer()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

async function newPage (viewport) {
  const context = await browser.newContext({ viewport })
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('[page error]', e.message))
  return page
}

const runState = async (page) => (await page.locator('#run-state').textContent()) ?? ''
const connected = (page) => until(async () => (await page.locator('#conn-status').getAttribute('data-state')) === 'connected', 15000, 'connected')

async function runAndWait (page, what = /Finished in|Exited with code|exceeded|Cancelled/) {
  await page.locator('#run').click()
  await until(async () => what.test(await runState(page)), 20000, `run state ${what}`)
}

test('accounts: API errors show beside the form, then sign-up works', async () => {
  await apiCall(server.base, 'POST', '/api/auth/register', { body: { username: 'taken', password: PASSWORD } })
  const page = await newPage(PHONE)
  await page.goto(server.base + '/')
  await page.screenshot({ path: artifact('signin-375.png') })
  await page.getByLabel('Username').fill('taken')
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Create account' }).click()
  await until(async () => /taken/i.test(await page.locator('#auth-error').textContent()), 10000, 'username taken error')
  await page.getByLabel('Password').fill('wrong password here')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await until(async () => /wrong username or password/i.test(await page.locator('#auth-error').textContent()), 10000, 'wrong password error')
  await page.context().close()
})

test('alice creates a session and makes share links', async () => {
  alice = await newPage(DESKTOP)
  await signUpInPage(alice, server.base, 'alice')
  await alice.getByLabel('New session title').fill('Pairing')
  await alice.getByRole('button', { name: 'Create session' }).click()
  await alice.waitForURL(/\/s\//)
  sessionUrl = alice.url()
  await connected(alice)
  await until(async () => (await alice.locator('#session-title').textContent()) === 'Pairing', 5000, 'title')
  await alice.getByText('Share').click()
  await alice.getByRole('button', { name: 'Copy editor link' }).click()
  await until(async () => /\/join\//.test(await alice.locator('#share-url').inputValue()), 5000, 'editor link')
  editorLink = await alice.locator('#share-url').inputValue()
  await alice.getByRole('button', { name: 'Copy viewer link' }).click()
  await until(async () => (await alice.locator('#share-url').inputValue()) !== editorLink, 5000, 'viewer link')
  viewerLink = await alice.locator('#share-url').inputValue()
  assert.match(viewerLink, /^http:\/\/127\.0\.0\.1:\d+\/join\//)
})

test('bob joins by link; alice types and bob sees the text and her cursor', async () => {
  bob = await newPage(PHONE)
  await signUpInPage(bob, server.base, 'bob')
  await bob.goto(editorLink)
  await bob.waitForURL(/\/s\//)
  assert.equal(bob.url(), sessionUrl)
  await connected(bob)
  await typeCode(alice, 'print("hello from alice")')
  await until(async () => (await editorText(bob)).includes('print("hello from alice")'), 10000, 'bob sees the text')
  await until(async () => (await bob.locator('#editor .cm-ySelectionInfo').allTextContents()).includes('alice'), 10000, 'bob sees alice\'s cursor')
  await until(async () => (await bob.locator('#participants li[data-name="alice"]').getAttribute('data-role').catch(() => null)) === 'owner', 10000, 'alice listed as owner')
})

test('alice runs a program printing over 2 s: bob sees lines arrive live; stderr, colours and inert OSC', async () => {
  await typeCode(alice, [
    'import sys, time',
    'print("\\x1b]0;HACKED\\x07\\x1b]52;c;aGVsbG8=\\x07osc-after")',
    'print("\\x1b[32mgreen\\x1b[0m")',
    'for i in range(4):',
    '    print(f"line {i}", flush=True)',
    '    time.sleep(0.5)',
    'print("oops", file=sys.stderr)'
  ].join('\n'))
  await until(async () => (await editorText(bob)).includes('oops'), 10000, 'bob has the code')
  await alice.locator('#run').click()
  await until(async () => (await consoleText(bob)).includes('line 0'), 15000, 'bob sees line 0')
  // Live: the first line arrives while the run is still going.
  assert.match(await runState(bob), /Running/)
  assert.ok(!(await consoleText(bob)).includes('line 3'))
  await until(async () => /Finished in \d/.test(await runState(bob)), 15000, 'bob sees the ending')
  await until(async () => /Finished in \d/.test(await consoleText(alice)), 15000, 'alice sees the ending in the console')
  const text = await consoleText(bob)
  for (const l of ['line 0', 'line 1', 'line 2', 'line 3', 'oops', 'green', 'osc-after']) assert.ok(text.includes(l), `console has ${l}`)
  assert.ok(!text.includes('HACKED'))
  assert.equal(await bob.title(), 'Pairing — Ensemble', 'OSC 0 did not change the title')
  assert.equal(await bob.locator('#console').getAttribute('data-inert-osc'), '2', 'OSC 0 and 52 were swallowed')
  // stderr is visibly different: xterm renders it in bright red (palette 9); ANSI green is palette 2.
  assert.match(await bob.locator('#console .xterm-rows span', { hasText: 'oops' }).first().getAttribute('class'), /xterm-fg-9/)
  assert.match(await bob.locator('#console .xterm-rows span', { hasText: 'green' }).first().getAttribute('class'), /xterm-fg-2/)
  await alice.screenshot({ path: artifact('session-1280.png') })
  await bob.screenshot({ path: artifact('session-375.png'), fullPage: true })
})

test('a run with input: the input line appears and both see the answer', async () => {
  await typeCode(alice, 'name = input("name? ")\nprint("hello", name)')
  await alice.locator('#run').click()
  await alice.locator('#stdin').waitFor({ state: 'visible', timeout: 15000 })
  await alice.locator('#stdin').fill('Ada')
  await alice.locator('#stdin').press('Enter')
  for (const p of [alice, bob]) {
    await until(async () => (await consoleText(p)).includes('hello Ada'), 15000, 'hello Ada')
  }
  await until(async () => /Finished in/.test(await runState(alice)), 10000, 'finished')
})

test('a syntax error shows its line; Ctrl+Enter runs', async () => {
  await typeCode(alice, 'print("ok")\nx = (1,\n')
  await alice.locator('#editor .cm-content').press('Control+Enter')
  await until(async () => /Exited with code 1/.test(await runState(alice)), 15000, 'exit code 1')
  // xterm draws its rows on the next animation frame, so the ending can
  // show a moment before the traceback does.
  await until(async () => /SyntaxError/.test(await consoleText(alice)), 5000, 'the traceback in the console')
  assert.match(await consoleText(alice), /line 2/)
})

test('Stop cancels a run: "Cancelled by alice"', async () => {
  await typeCode(alice, 'import time\nprint("spinning", flush=True)\ntime.sleep(30)')
  await alice.locator('#run').click()
  await until(async () => (await consoleText(alice)).includes('spinning'), 15000, 'spinning')
  await alice.locator('#stop').click()
  await until(async () => /Cancelled by alice/.test(await runState(bob)), 15000, 'bob sees the cancel')
})

test('history lists the runs; a run opens read-only with "Restore this code"', async () => {
  await alice.locator('summary', { hasText: 'History' }).click()
  await until(async () => (await alice.locator('#history-list .run-item').count()) >= 4, 10000, 'four runs listed')
  const first = alice.locator('#history-list .run-item').first()
  assert.match(await first.innerText(), /alice/)
  assert.match(await first.innerText(), /Cancelled by alice/)
  await alice.locator('#history-list .run-item', { hasText: 'Exited with code 1' }).click()
  await alice.locator('#run-detail').waitFor({ state: 'visible' })
  assert.match(await alice.locator('#run-detail pre.code').innerText(), /x = \(1,/)
  await alice.getByRole('button', { name: 'Restore this code' }).click()
  await until(async () => (await editorText(bob)).includes('x = (1,'), 10000, 'restored code reaches bob')
})

test('a guest viewer cannot type and has no Run button', async () => {
  carol = await newPage(PHONE)
  await carol.goto(viewerLink)
  await carol.getByLabel('Your display name').fill('Carol')
  await carol.getByRole('button', { name: 'Join' }).click()
  await connected(carol)
  // A guest cannot read the session, but the ticket names it.
  await until(async () => (await carol.locator('#session-title').textContent()) === 'Pairing', 5000, 'carol sees the title')
  assert.equal(await carol.title(), 'Pairing — Ensemble')
  await until(async () => (await editorText(carol)).includes('x = (1,'), 10000, 'carol sees the code')
  assert.equal(await carol.locator('#run').isVisible(), false)
  assert.equal(await carol.locator('#viewer-note').isVisible(), true)
  assert.equal(await carol.locator('#editor .cm-content').getAttribute('contenteditable'), 'false')
  await carol.locator('#editor .cm-content').click()
  await carol.keyboard.type('HACK')
  assert.ok(!(await editorText(carol)).includes('HACK'))
  await until(async () => (await alice.locator('#participants li[data-name="Carol (guest)"]').getAttribute('data-role').catch(() => null)) === 'viewer', 10000, 'alice lists carol as viewer')
  assert.ok(!(await editorText(alice)).includes('HACK'))
  // The last run's output was replayed to the late joiner.
  await until(async () => (await consoleText(carol)).length > 0, 10000, 'carol sees the last run')
  await carol.screenshot({ path: artifact('viewer-375.png'), fullPage: true })
})

test('the server is killed and restarted under open pages: editing and running work again', async (t) => {
  if (server.external) { t.skip('external server'); return }
  await server.kill()
  await until(async () => ['reconnecting', 'connecting'].includes(await alice.locator('#conn-status').getAttribute('data-state')), 10000, 'alice sees reconnecting')
  await server.start()
  for (const p of [alice, bob, carol]) await connected(p)
  await typeCode(alice, 'print("after restart")')
  await until(async () => (await editorText(bob)).includes('after restart'), 15000, 'bob sees the edit after restart')
  await until(async () => (await editorText(carol)).includes('after restart'), 15000, 'carol sees the edit after restart')
  await runAndWait(bob)
  for (const p of [alice, bob]) {
    await until(async () => (await consoleText(p)).includes('after restart'), 15000, 'output after restart')
  }
  assert.match(await runState(alice), /Finished in/)
})
