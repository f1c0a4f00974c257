// The operator console (console/README.md): built to dist/console/, which the server serves under /console/.
// `npm run build:console` from the repository root; paths resolve from this file, so any working directory works.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
/** Where `vite` (dev) sends /admin and the /console session routes: a running bridge. */
const api = process.env.CONSOLE_API ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: here,
  base: '/console/',
  publicDir: false,
  build: {
    outDir: '../dist/console',
    emptyOutDir: true,
    target: 'es2022',
    // Small enough to inline nothing but the tiniest assets; no source maps in what the server ships.
    assetsInlineLimit: 2048,
    sourcemap: false,
  },
  server: {
    proxy: {
      '/admin': { target: api, changeOrigin: false },
      '^/console/(session|login|logout)': { target: api, changeOrigin: false },
    },
  },
});
