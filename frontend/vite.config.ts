// Vite: builds to dist/ (served by `ensemble --static-dir frontend/dist`).
// `npm run dev` proxies the API and websocket to ENSEMBLE_URL.
import { defineConfig } from 'vitest/config'

const target = process.env.ENSEMBLE_URL ?? 'http://127.0.0.1:8080'

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: {
    proxy: {
      '/api': target,
      '/readyz': target,
      '/ws': { target: target.replace(/^http/, 'ws'), ws: true }
    }
  },
  test: { include: ['tests/unit/**/*.test.ts'], environment: 'node' }
})
