// Vite build of the web app. `npm run build` writes dist/ (index.html and
// hashed files under dist/assets/), which `reel serve` serves at `/`.
// `npm run dev` proxies the API and the media to a running reel server:
// REEL_SERVER=http://127.0.0.1:8080 npm run dev
import { defineConfig } from 'vite';

declare const process: { env: Record<string, string | undefined> };
const reelServer = process.env.REEL_SERVER ?? 'http://127.0.0.1:8080';
// changeOrigin stays false so that reel sees the dev server's Host header
// and its absolute URLs (tus Location, manifest URLs) point back here.
const proxied = { target: reelServer, changeOrigin: false };

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2021',
    sourcemap: true,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: { '/v1': proxied, '/files': proxied, '/v': proxied, '/s3': proxied, '/r': proxied },
  },
});
