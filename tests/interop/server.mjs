// Starts a real `ensemble` binary for a test, on a free port, with a fresh
// store (SQLite in a temp dir, or a fresh database on the test MongoDB), and
// offers small helpers for its REST API.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const BIN = process.env.ENSEMBLE_BIN ?? new URL('../../target/debug/ensemble', import.meta.url).pathname

/** The stores to test against: SQLite always, MongoDB when the test command started one. */
export function backends () {
  const list = ['sqlite']
  if (process.env.ENSEMBLE_TEST_MONGODB_URI) list.push('mongodb')
  else if (process.env.CI) throw new Error('ENSEMBLE_TEST_MONGODB_URI must be set in CI')
  return list
}

export async function startServer (backend, extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'ensemble-interop-'))
  const args = ['--bind', '127.0.0.1:0', '--data-dir', join(dir, 'data'), ...extraArgs]
  if (backend === 'mongodb') {
    const db = 'interop_' + Math.random().toString(36).slice(2)
    args.push('--mongodb-uri', `${process.env.ENSEMBLE_TEST_MONGODB_URI.replace(/\/$/, '')}/${db}`)
  }
  const child = spawn(BIN, args, { env: { PATH: process.env.PATH, ENSEMBLE_LOG: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] })
  const lines = createInterface({ input: child.stderr })
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 30000)
    lines.on('line', (line) => {
      if (process.env.TEST_LOG) console.error('[server]', line)
      const m = line.match(/address=(http:\/\/[0-9.:]+)/)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    })
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)))
  })
  // Wait until the store answers (MongoDB indexes are made on the first check).
  for (let i = 0; i < 100; i++) {
    const r = await fetch(base + '/readyz').catch(() => null)
    if (r && r.status === 200) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    base,
    ws: base.replace('http', 'ws') + '/ws',
    async stop () {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

export async function api (server, method, path, { token, body } = {}) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const r = await fetch(server.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}

export async function signUp (server, username) {
  const creds = { username, password: 'correct horse battery staple' }
  const reg = await api(server, 'POST', '/api/auth/register', { body: creds })
  if (reg.status !== 201) throw new Error(`register ${username}: ${JSON.stringify(reg)}`)
  const login = await api(server, 'POST', '/api/auth/login', { body: creds })
  return login.body.token
}

/** Polls `cond` every 20 ms until it is true, or fails after `ms`. */
export async function until (cond, ms = 10000, what = 'condition') {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
