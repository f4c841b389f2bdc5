// Browser-test harness: starts the real `ensemble` binary (temp data dir,
// free port, --static-dir dist), restarts it on the same port and data dir,
// launches Debian's Chromium through playwright-core, and waits on
// conditions (never fixed sleeps).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { chromium } from 'playwright-core'

const here = new URL('.', import.meta.url).pathname
export const FRONTEND = resolve(here, '../..')
// ENSEMBLE_BIN is relative to where the command was typed (npm's INIT_CWD);
// the default, ../target/debug/ensemble, to frontend/.
export const BIN = process.env.ENSEMBLE_BIN
  ? resolve(process.env.INIT_CWD ?? process.cwd(), process.env.ENSEMBLE_BIN)
  : resolve(FRONTEND, '../target/debug/ensemble')
export const DIST = join(FRONTEND, 'dist')
export const ARTIFACTS = resolve(FRONTEND, process.env.ARTIFACTS_DIR ?? 'test-artifacts')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

function launch (dataDir, bind) {
  const args = ['--bind', bind, '--data-dir', dataDir, '--static-dir', DIST]
  const child = spawn(BIN, args, { env: { PATH: process.env.PATH, ENSEMBLE_LOG: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] })
  const lines = createInterface({ input: child.stderr })
  const base = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 30 s')), 30000)
    lines.on('line', (line) => {
      if (process.env.TEST_LOG) console.error('[server]', line)
      const m = line.match(/address=(http:\/\/[0-9.:]+)/)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}`)) })
  })
  return { child, base }
}

async function ready (base) {
  await until(async () => {
    const r = await fetch(base + '/readyz').catch(() => null)
    return r?.status === 200
  }, 15000, 'readyz 200')
}

/** A real server; `restart()` kills it (SIGKILL) and starts it again on the same port and data dir. */
export async function startServer () {
  // For development against a running server (e.g. `vite preview` + proxy); it cannot be restarted.
  if (process.env.ENSEMBLE_TEST_URL) {
    const base = process.env.ENSEMBLE_TEST_URL
    const no = async () => { throw new Error('ENSEMBLE_TEST_URL: cannot restart an external server') }
    return { base, external: true, kill: no, start: no, async stop () {} }
  }
  if (!existsSync(BIN)) throw new Error(`no server binary at ${BIN}: build it or set ENSEMBLE_BIN`)
  if (!existsSync(join(DIST, 'index.html'))) throw new Error(`no built app at ${DIST}: run npm run build`)
  const dir = mkdtempSync(join(tmpdir(), 'ensemble-browser-'))
  const data = join(dir, 'data')
  let proc = launch(data, '127.0.0.1:0')
  const base = await proc.base
  await ready(base)
  const port = new URL(base).port
  const stop = async (signal) => {
    if (proc.child.exitCode !== null) return
    const gone = new Promise((resolve) => proc.child.once('exit', resolve))
    proc.child.kill(signal)
    await gone
  }
  return {
    base,
    async kill () { await stop('SIGKILL') },
    async start () {
      proc = launch(data, `127.0.0.1:${port}`)
      const again = await proc.base
      if (again !== base) throw new Error(`restarted on ${again}, not ${base}`)
      await ready(base)
    },
    async stop () { await stop('SIGTERM'); rmSync(dir, { recursive: true, force: true }) }
  }
}

export async function launchBrowser () {
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
}

/** Polls an (async) condition every 25 ms until true; fails after `ms`. */
export async function until (cond, ms = 10000, what = 'condition') {
  const start = Date.now()
  for (;;) {
    if (await cond()) return
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

export async function apiCall (base, method, path, { token, body } = {}) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}

export function artifact (name) {
  mkdirSync(ARTIFACTS, { recursive: true })
  return join(ARTIFACTS, name)
}

// ---- page helpers (selectors are the app's ids and labels) ----

export const PASSWORD = 'correct horse battery staple'

/** Signs up through the form and waits for the sessions list. */
export async function signUpInPage (page, base, username) {
  await page.goto(base + '/')
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Create account' }).click()
  await page.getByRole('heading', { name: 'Your sessions' }).waitFor()
}

/** The text the console shows (xterm's DOM rows). */
export async function consoleText (page) {
  return await page.locator('#console .xterm-rows').innerText().catch(() => '')
}

export async function editorText (page) {
  return await page.locator('#editor .cm-content').innerText()
}

/** Replaces the editor's content by typing, as a person would. */
export async function typeCode (page, code) {
  await page.locator('#editor .cm-content').click()
  await page.keyboard.press('ControlOrMeta+a')
  await page.keyboard.press('Delete')
  // insertText avoids CodeMirror's auto-indent and bracket closing.
  await page.keyboard.insertText(code)
}

/** Creates a session from the sessions list and waits for its page. */
export async function createSession (page, title) {
  await page.getByLabel('New session title').fill(title)
  await page.getByRole('button', { name: 'Create session' }).click()
  await page.waitForURL(/\/s\//)
}

/** Opens a session side panel ("Share", "People", "History") unless it is open. */
export async function openPanel (page, name) {
  const panel = page.locator('details.panel').filter({ has: page.locator('summary', { hasText: new RegExp(`^${name}$`) }) })
  if (!(await panel.evaluate((d) => d.open))) await panel.locator('summary').click()
  return panel
}

/** Makes a share link in the owner's Share panel and returns it. */
export async function makeLink (page, role) {
  await openPanel(page, 'Share')
  const url = page.locator('#share-url')
  const before = await url.inputValue()
  await page.getByRole('button', { name: `Copy ${role} link` }).click()
  await until(async () => {
    const now = await url.inputValue()
    return now !== before && /\/join\//.test(now) && (await url.getAttribute('data-role')) === role
  }, 5000, `${role} link`)
  return await url.inputValue()
}
