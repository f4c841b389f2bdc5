// The browser suite of issue 7: the built app, served by the real binary,
// driven in Debian's Chromium. Alice (owner) and Bob (editor, via a link)
// share a session; Carol joins as a guest viewer. Runs stream live, input
// works, errors show, history lists runs, and a server restart under open
// pages heals by itself. A teacher manages a student through the People
// panel (role, removal, link revocation). Screenshots go to test-artifacts/.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  apiCall, artifact, consoleText, createSession, editorText, launchBrowser, makeLink, openPanel,
  PASSWORD, signUpInPage, startServer, typeCode, until
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
  await createSession(alice, 'Pairing')
  sessionUrl = alice.url()
  await connected(alice)
  await until(async () => (await alice.locator('#session-title').textContent()) === 'Pairing', 5000, 'title')
  editorLink = await makeLink(alice, 'editor')
  viewerLink = await makeLink(alice, 'viewer')
  assert.notEqual(viewerLink, editorLink)
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

test('a run with input: both are told it waits, the starter types straight away, both see the answer', async () => {
  await typeCode(alice, 'name = input("name? ")\nprint("hello", name)')
  await alice.locator('#run').click()
  for (const p of [alice, bob]) {
    await until(async () => (await runState(p)) === 'Waiting for input', 15000, 'waiting for input')
  }
  await until(async () => (await alice.locator('form.stdin[data-waiting]').count()) === 1, 5000, 'the input line stands out')
  // Run had the focus, so the input line takes it: no click needed.
  assert.equal(await alice.evaluate(() => document.activeElement?.id), 'stdin')
  await alice.keyboard.type('Ada')
  await alice.keyboard.press('Enter')
  for (const p of [alice, bob]) {
    await until(async () => (await consoleText(p)).includes('hello Ada'), 15000, 'hello Ada')
  }
  assert.equal(await alice.locator('form.stdin[data-waiting]').count(), 0)
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

test('alice renames the session: bob and the guest see the new title at once', async () => {
  assert.equal(await bob.locator('#rename').count(), 0, 'only the owner can rename')
  await alice.getByRole('button', { name: 'Rename this session' }).click()
  const field = alice.getByLabel('New title')
  assert.equal(await field.inputValue(), 'Pairing')
  // A blank title is refused with the server's reason, and changes nothing.
  await field.fill('   ')
  await alice.getByRole('button', { name: 'Save' }).click()
  await until(async () => ((await alice.locator('#rename-error').textContent()) ?? '').length > 0, 10000, 'the refusal shown')
  await field.fill('Pairing: loops')
  await field.press('Enter')
  // The room's session.title can arrive before the PATCH's reply, so the
  // text may change while the field is still open: wait for both.
  const title = alice.locator('#session-title')
  await until(async () => (await title.textContent()) === 'Pairing: loops' && await title.isVisible(), 10000, 'alice sees the new title, the field closed')
  assert.equal(await alice.locator('#rename-title').isVisible(), false)
  for (const [who, page] of [['bob', bob], ['carol', carol]]) {
    await until(async () => (await page.locator('#session-title').textContent()) === 'Pairing: loops', 10000, `${who} sees the new title`)
    assert.equal(await page.title(), 'Pairing: loops — Ensemble')
  }
})

test('people: the owner sees who joined, makes them a viewer, removes them and revokes their link', async () => {
  const teacher = await newPage(DESKTOP)
  await signUpInPage(teacher, server.base, 'teacher')
  await createSession(teacher, 'Classroom')
  await connected(teacher)
  const people = await openPanel(teacher, 'People')
  const members = teacher.locator('#members')
  const links = teacher.locator('#links')
  const status = async () => (await teacher.locator('#people-status').textContent()) ?? ''
  await until(async () => (await members.locator('li').count()) === 1, 10000, 'the owner listed')
  assert.match(await members.locator('li[data-user="teacher"]').innerText(), /teacher \(you\)\s*owner/)
  assert.equal(await members.locator('li[data-user="teacher"] select, li[data-user="teacher"] button').count(), 0, 'no controls for the owner')
  assert.match(await links.innerText(), /No share links/)

  // Making a link in Share lists it in People.
  const link = await makeLink(teacher, 'editor')
  await until(async () => (await links.locator('li[data-role="editor"]').count()) === 1, 10000, 'the new link listed')
  assert.match(await links.locator('li').first().innerText(), /Editor link\s*\d\d:\d\d/)

  const student = await newPage(PHONE)
  await signUpInPage(student, server.base, 'student')
  await student.goto(link)
  await student.waitForURL(/\/s\//)
  await connected(student)
  assert.equal(await student.locator('#viewer-note').isVisible(), false)
  assert.equal(await student.locator('#editor .cm-content').getAttribute('contenteditable'), 'true')

  // Participants (live presence) counts and orders them: you, then the rest.
  await until(async () => (await teacher.locator('#participant-count').textContent()) === '(2)', 10000, 'two participants')
  assert.deepEqual(await teacher.locator('#participants li .name').allInnerTexts(), ['teacher (you)', 'student'])

  // Refresh shows the newcomer, as an editor (the link's role).
  const role = teacher.getByLabel('Role for student')
  assert.equal(await role.count(), 0, 'not listed before a refresh')
  await teacher.getByRole('button', { name: 'Refresh members and links' }).click()
  await until(async () => (await role.inputValue().catch(() => '')) === 'editor', 10000, 'student listed as editor')
  assert.match(await teacher.locator('#members-head').textContent(), /Members \(2\)/)
  await teacher.screenshot({ path: artifact('people-1280.png') })
  await teacher.setViewportSize(PHONE)
  await people.scrollIntoViewIfNeeded()
  assert.ok(await teacher.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling at 375 px')
  for (const c of [role, teacher.getByRole('button', { name: 'Remove student' }), teacher.getByRole('button', { name: /^Revoke editor link/ })]) {
    const box = await c.boundingBox()
    assert.ok(box && box.x >= 0 && box.x + box.width <= 375, 'control inside a 375 px screen')
  }
  await teacher.screenshot({ path: artifact('people-375.png'), fullPage: true })
  await teacher.setViewportSize(DESKTOP)

  // Viewer: the server tells the student's open page, which turns read-only
  // at once (before they type anything), and their typing goes nowhere.
  await role.selectOption('viewer')
  await until(async () => /student is now a viewer/.test(await status()), 10000, 'role change confirmed')
  assert.equal(await role.inputValue(), 'viewer')
  await student.locator('#viewer-note').waitFor({ state: 'visible', timeout: 10000 })
  assert.equal(await student.locator('#editor .cm-content').getAttribute('contenteditable'), 'false')
  assert.equal(await student.locator('#run').isVisible(), false)
  await student.locator('#editor .cm-content').click()
  await student.keyboard.type('Z')
  assert.ok(!(await editorText(student)).includes('Z'), 'a read-only editor takes no keystrokes')
  await until(async () => (await teacher.locator('#participants li[data-name="student"]').getAttribute('data-role').catch(() => null)) === 'viewer', 10000, 'the teacher sees student as viewer')
  assert.ok(!(await editorText(teacher)).includes('Z'), 'nothing reached the teacher')

  // Editor again: the same page can edit and run without a reload.
  await role.selectOption('editor')
  await until(async () => /student is now an editor/.test(await status()), 10000, 'upgrade confirmed')
  await student.locator('#viewer-note').waitFor({ state: 'hidden', timeout: 10000 })
  assert.equal(await student.locator('#editor .cm-content').getAttribute('contenteditable'), 'true')
  await student.locator('#run').waitFor({ state: 'visible', timeout: 10000 })
  await student.locator('#editor .cm-content').click()
  await student.keyboard.type('Y')
  await until(async () => (await editorText(teacher)).includes('Y'), 10000, "the student's edit reached the teacher")

  // Remove takes two presses; the student's page then cannot join.
  await teacher.getByRole('button', { name: 'Remove student' }).click()
  const confirm = teacher.getByRole('button', { name: 'Confirm remove student' })
  assert.equal(await confirm.innerText(), 'Confirm remove')
  assert.equal(await members.locator('li[data-user="student"]').count(), 1, 'one press removes nobody')
  await confirm.click()
  await until(async () => (await members.locator('li[data-user="student"]').count()) === 0, 10000, 'student row dropped')
  assert.match(await status(), /Removed student\. They can join again through a share link until you revoke it\./)
  await until(async () => /^Cannot join this session: /.test(await student.locator('#session-fatal').textContent()), 15000, 'student told they cannot join')
  assert.equal(await student.locator('#session-fatal').isVisible(), true)
  await until(async () => (await student.locator('#conn-status').getAttribute('data-state')) === 'offline', 5000, 'student offline')
  await teacher.getByRole('button', { name: 'Refresh members and links' }).click()
  await until(async () => /Members \(1\)/.test(await teacher.locator('#members-head').textContent()), 10000, 'still one member after a refresh')

  // Revoke (two presses too); the link then shows an error.
  await teacher.getByRole('button', { name: /^Revoke editor link made / }).click()
  await teacher.getByRole('button', { name: /^Confirm revoke editor link made / }).click()
  await until(async () => /No share links/.test(await links.innerText()), 10000, 'link list empty')
  assert.match(await status(), /Revoked the editor link made .*: it no longer works\./)
  await student.goto(link)
  const refused = student.getByRole('alert').filter({ hasText: /^This link does not work: / })
  await refused.waitFor({ state: 'visible', timeout: 10000 })
  assert.notEqual(new URL(student.url()).pathname.slice(0, 3), '/s/')
  await teacher.context().close()
  await student.context().close()
})

test('a member leaves a session from their list; the owner keeps theirs', async () => {
  const erin = await newPage(PHONE)
  await signUpInPage(erin, server.base, 'erin')
  await erin.goto(editorLink)
  await erin.waitForURL(/\/s\//)
  await connected(erin)
  await erin.goto(server.base + '/')
  const row = erin.locator('li[data-session]', { hasText: 'Pairing: loops' })
  await row.waitFor({ timeout: 10000 })
  await erin.getByRole('button', { name: 'Leave Pairing: loops' }).click()
  assert.equal(await row.count(), 1, 'one press leaves nothing')
  await erin.getByRole('button', { name: 'Confirm leave Pairing: loops' }).click()
  await until(async () => (await row.count()) === 0, 10000, 'the row is gone')
  await erin.reload()
  await erin.getByText('No sessions yet: create one above.').waitFor({ timeout: 10000 })
  // The owner's list offers no Leave for their own session.
  await alice.goto(server.base + '/')
  await alice.locator('li[data-session]', { hasText: 'Pairing: loops' }).waitFor({ timeout: 10000 })
  assert.equal(await alice.getByRole('button', { name: /^Leave / }).count(), 0)
  await alice.goto(sessionUrl)
  await connected(alice)
  await erin.context().close()
})

test('the owner deletes a session from their list: an open page says so and stops', async () => {
  const teacher = await newPage(DESKTOP)
  await signUpInPage(teacher, server.base, 'dora')
  await createSession(teacher, 'Scratch')
  await connected(teacher)
  const link = await makeLink(teacher, 'editor')
  const guest = await newPage(PHONE)
  await guest.goto(link)
  await guest.getByLabel('Your display name').fill('Gus')
  await guest.getByRole('button', { name: 'Join' }).click()
  await connected(guest)
  await typeCode(teacher, 'print("about to go")')
  await until(async () => (await editorText(guest)).includes('about to go'), 10000, 'the guest sees the code')

  await teacher.goto(server.base + '/')
  const row = teacher.locator('li[data-session]', { hasText: 'Scratch' })
  await row.waitFor({ timeout: 10000 })
  await teacher.getByRole('button', { name: 'Delete Scratch' }).click()
  assert.equal(await row.count(), 1, 'one press deletes nothing')
  await teacher.getByRole('button', { name: 'Confirm delete Scratch' }).click()
  await until(async () => (await row.count()) === 0, 10000, 'the row is gone')

  // The open page is told who deleted it, stops reconnecting, and keeps the text readable.
  await until(async () => ((await guest.locator('#session-fatal').textContent()) ?? '') === 'Session ended: dora deleted this session.', 10000, 'the guest is told')
  assert.equal(await guest.locator('#conn-status').getAttribute('data-state'), 'offline')
  assert.ok((await editorText(guest)).includes('about to go'))
  assert.equal(await guest.locator('#editor .cm-content').getAttribute('contenteditable'), 'false')
  await guest.screenshot({ path: artifact('deleted-375.png') })
  await teacher.reload()
  await teacher.getByText('No sessions yet: create one above.').waitFor({ timeout: 10000 })
  await teacher.context().close()
  await guest.context().close()
})

test('a sign-in that ended elsewhere leads to the sign-in form, and back to the same session', async () => {
  const dana = await newPage(DESKTOP)
  await signUpInPage(dana, server.base, 'dana')
  await createSession(dana, 'Homework')
  await connected(dana)
  const url = dana.url()
  // Signed out on another device: the token this page holds no longer works.
  const token = await dana.evaluate(() => localStorage.getItem('ensemble.token'))
  assert.equal((await apiCall(server.base, 'POST', '/api/auth/logout', { token })).status, 204)
  await dana.reload()
  await dana.getByRole('heading', { name: 'Sign in to Ensemble' }).waitFor({ timeout: 10000 })
  assert.equal(dana.url(), url, 'still at the session\'s address')
  assert.equal(await dana.locator('#session-fatal').count(), 0, 'no "Cannot join" dead end')
  await dana.getByLabel('Username').fill('dana')
  await dana.getByLabel('Password').fill(PASSWORD)
  await dana.getByRole('button', { name: 'Sign in' }).click()
  await connected(dana)
  await until(async () => (await dana.locator('#session-title').textContent()) === 'Homework', 10000, 'back in the session')
  await dana.context().close()
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
