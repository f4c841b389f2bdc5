// After `vite build`: writes `.br` and `.gz` next to every text asset in
// dist/, so the server sends them precompressed (`ServeDir::precompressed_*`)
// to browsers that accept them, with no compression work per request. A
// classroom of phones joining at once then downloads ~240 kB, not ~930 kB.
// Node's own zlib; no dependency.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const DIST = new URL('../dist/', import.meta.url).pathname
const TEXT = /\.(js|css|html|svg|json|txt|map)$/

function * files (dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield * files(path)
    else if (TEXT.test(name)) yield path
  }
}

let before = 0
let after = 0
for (const path of files(DIST)) {
  const raw = readFileSync(path)
  const br = brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length
    }
  })
  const gz = gzipSync(raw, { level: 9 })
  // Only worth serving when smaller.
  if (br.length < raw.length) writeFileSync(path + '.br', br)
  if (gz.length < raw.length) writeFileSync(path + '.gz', gz)
  before += raw.length
  after += Math.min(br.length, raw.length)
}
console.log(`precompressed dist/: ${(before / 1024).toFixed(0)} KiB → ${(after / 1024).toFixed(0)} KiB with brotli`)
