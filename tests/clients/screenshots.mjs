#!/usr/bin/env node
// Screenshots of reel's web app in headless Debian chromium, for review: signs in,
// then saves the library, upload (with a file uploading) and watch pages at a
// desktop (1366x768) and a phone (390x844) width.
//
//   node tests/clients/screenshots.mjs BASE_URL API_KEY VIDEO_ID OUT_DIR
//
// Writes OUT_DIR/{library,upload,watch}-{1366,390}.png and prints ONE JSON object
// on stdout: {ok, files:[...], errors:[...]}. The upload shown is a generated
// 24 MB file, throttled so that it is caught mid-way, then paused and deleted
// from the server (tus termination), so no video is created.
// Exit code: 0 when all six files were written; 1 otherwise; 2 on bad usage.
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS as BASE_CHROMIUM_ARGS } from './chromium.mjs';

const CHROMIUM_ARGS = [...BASE_CHROMIUM_ARGS, '--hide-scrollbars'];
const WIDTHS = [
  { name: '1366', viewport: { width: 1366, height: 768 } },
  { name: '390', viewport: { width: 390, height: 844 } },
];

const [baseArg, apiKey, videoId, outDir, ...extra] = process.argv.slice(2);
if (!baseArg || !apiKey || !videoId || !outDir || extra.length) {
  process.stderr.write('usage: screenshots.mjs BASE_URL API_KEY VIDEO_ID OUT_DIR\n');
  process.exit(2);
}
const baseUrl = baseArg.replace(/\/+$/, '');
const result = { ok: false, files: [], errors: [] };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const hardStop = setTimeout(() => {
  result.errors.push({ type: 'harness', details: 'hard timeout after 180s' });
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(1);
}, 180_000);
hardStop.unref();

async function shoot(page, pageName) {
  for (const width of WIDTHS) {
    await page.setViewportSize(width.viewport);
    await sleep(400);
    const file = join(outDir, `${pageName}-${width.name}.png`);
    await page.screenshot({ path: file });
    result.files.push(file);
    process.stderr.write(`screenshots: ${file}\n`);
  }
}

let context = null;
const userDataDir = mkdtempSync(join(tmpdir(), 'reel-screenshots-'));
try {
  mkdirSync(outDir, { recursive: true });
  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: WIDTHS[0].viewport,
    timeout: 30_000,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => result.errors.push({ type: 'pageerror', details: String(err?.message || err) }));

  await page.goto(`${baseUrl}/signin`, { waitUntil: 'load' });
  await page.fill('[data-testid="api-key-input"]', apiKey);
  await page.click('[data-testid="signin-submit"]');
  await page.waitForURL(`${baseUrl}/`);

  // Library.
  await page.waitForSelector('[data-testid="video-card"]', { timeout: 15_000 });
  await page.waitForLoadState('networkidle').catch(() => undefined);
  await shoot(page, 'library');

  // Watch: a few seconds in, paused, stats open, hovering the seek bar (desktop).
  await page.setViewportSize(WIDTHS[0].viewport);
  await page.goto(`${baseUrl}/watch/${encodeURIComponent(videoId)}?t=6`, { waitUntil: 'load' });
  await page.waitForSelector('[data-testid="player-video"]');
  await page.evaluate(() => {
    document.querySelector('[data-testid="player-video"]').muted = true;
  });
  await page.waitForFunction(() => document.querySelector('[data-testid="player-video"]').currentTime > 7, null, { timeout: 20_000 });
  await page.evaluate(() => document.querySelector('[data-testid="player-video"]').pause());
  await page.keyboard.press('s');
  for (const width of WIDTHS) {
    await page.setViewportSize(width.viewport);
    await sleep(400);
    const seek = await page.locator('.seek').boundingBox();
    if (seek) await page.mouse.move(seek.x + seek.width * 0.55, seek.y + seek.height / 2);
    await sleep(500);
    const file = join(outDir, `watch-${width.name}.png`);
    await page.screenshot({ path: file });
    result.files.push(file);
    process.stderr.write(`screenshots: ${file}\n`);
  }

  // Upload: a generated file under a slow uplink, caught part-way.
  await page.setViewportSize(WIDTHS[0].viewport);
  await page.goto(`${baseUrl}/upload`, { waitUntil: 'load' });
  await page.waitForSelector('[data-testid="file-input"]', { state: 'attached' });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1_000_000 });
  await page.setInputFiles('[data-testid="file-input"]', {
    name: 'holiday-in-the-alps.mp4',
    mimeType: 'video/mp4',
    buffer: Buffer.alloc(24 * 1000 * 1000, 1),
  });
  await page.waitForFunction(
    () => {
      const row = document.querySelector('[data-testid="upload-item"]');
      return row && Number(row.dataset.bytesSent) > 3_000_000;
    },
    null,
    { timeout: 30_000 },
  );
  await sleep(800);
  await shoot(page, 'upload');
  // Stop the upload and delete it on the server so it never becomes a video.
  await page.setViewportSize(WIDTHS[0].viewport);
  await page.click('[data-testid="upload-pause"]').catch(() => undefined);
  await page.evaluate(async () => {
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith('tus::')) continue;
      const entry = JSON.parse(localStorage.getItem(key) || '{}');
      if (entry.uploadUrl) await fetch(entry.uploadUrl, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
    }
  });
  result.ok = result.files.length === 6;
} catch (e) {
  result.errors.push({ type: 'harness', details: String(e?.message || e).split('\n')[0] });
} finally {
  try {
    if (context) await context.close();
  } catch {
    // The browser is gone already.
  }
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exitCode = result.ok ? 0 : 1;
