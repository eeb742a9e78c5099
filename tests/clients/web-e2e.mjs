#!/usr/bin/env node
// End-to-end check of reel's web app in headless Debian chromium: sign in through
// the sign-in page, upload a file on /upload (tus) as a private video, cut the
// network mid-upload and check that the upload resumes by itself, pause and resume
// it with the buttons, follow the link to the video, wait in the library until it
// is `ready`, and play it to the end on its watch page through the signed URLs the
// page mints (and renews: the mint is asked for short tokens), and with Shaka
// (DASH) for a second. Then an anonymous
// browser opens the same watch page and gets a message and no media; the owner
// makes the video public on its watch page and the anonymous page plays it.
// Prints ONE JSON object on stdout.
//
//   node tests/clients/web-e2e.mjs BASE_URL API_KEY VIDEO_FILE [--timeout SECONDS]
//
// BASE_URL is a reel server that serves the app (REEL_WEB_DIR=web/dist).
// --timeout (default 300): overall wall-clock limit.
//
// The browser reaches BASE_URL through a small TCP relay in this script, which
// limits the upload rate (so the upload lasts about 15 s whatever the file's
// size) and, for the network cut, drops every open connection while
// `context.setOffline(true)` makes the browser offline. Chromium's own emulation
// cannot do either: its upload throttling only delays the response (the body has
// long reached the server), and going offline does not break requests in flight.
//
// Output: {ok, uploadedBytes, offlineAt, statusesWhileOffline, serverOffsetAtCut, interrupted, tusRequestsFailed, resumed, pausedAt, pauseResumed, videoId,
//          ended, currentTime, duration, levelHeight, private:{...}, errors:[...], steps:[...], elapsedMs}
// Exit code: 0 only on success; 1 otherwise; 2 on bad usage.
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const UPLOAD_SECONDS = 15;
// Pause first (the first 8 MiB request is surely in flight), then cut the network.
const PAUSE_AT_FRACTION = 0.1;
const OFFLINE_AT_FRACTION = 0.3;
// Bytes through the relay after Resume that show the upload flowing again.
const RESUMED_BYTES = 256 * 1024;
const OFFLINE_MS = 2000;
// Real time, so that segments are fetched after the first short token ended.
const PLAYBACK_RATE = 1;
// The lifetime the watch page's mint is made to ask for (it asks for an hour).
const TOKEN_TTL_SECONDS = 4;

function usage(msg) {
  if (msg) process.stderr.write(`web-e2e: ${msg}\n`);
  process.stderr.write('usage: web-e2e.mjs BASE_URL API_KEY VIDEO_FILE [--timeout SECONDS]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const positional = [];
  let timeout = 300;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--timeout' || arg.startsWith('--timeout=')) {
      const value = Number(arg.includes('=') ? arg.split('=')[1] : argv[++i]);
      if (!Number.isFinite(value) || value <= 0) usage(`--timeout: not a positive number`);
      timeout = value;
    } else if (arg === '-h' || arg === '--help') usage();
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else positional.push(arg);
  }
  if (positional.length !== 3) usage('expected BASE_URL API_KEY VIDEO_FILE');
  const [baseUrl, apiKey, videoFile] = positional;
  return { baseUrl: baseUrl.replace(/\/+$/, ''), apiKey, videoFile, timeout };
}

const opts = parseArgs(process.argv.slice(2));
const t0 = Date.now();
const deadline = t0 + opts.timeout * 1000;
let fileSize;
try {
  fileSize = statSync(opts.videoFile).size;
} catch (e) {
  usage(`cannot read ${opts.videoFile}: ${e.message}`);
}

const result = {
  ok: false,
  uploadedBytes: 0,
  fileSize,
  offlineAt: null,
  statusesWhileOffline: [],
  serverOffsetAtCut: null,
  interrupted: false,
  tusRequestsFailed: 0,
  resumed: false,
  pausedAt: null,
  pauseResumed: false,
  videoId: null,
  ended: false,
  currentTime: null,
  duration: null,
  levelHeight: null,
  private: {
    libraryVisibility: null,
    mints: 0,
    tokensUsed: 0,
    lateRequests: 0,
    refusals: 0,
    unsignedRequests: 0,
    anonymousMessage: null,
    anonymousPlayer: null,
    anonymousMediaRequests: null,
    anonymousListed: null,
    publicReadyState: null,
    dashPlayedTo: null,
    dashManifests: 0,
  },
  errors: [],
  steps: [],
  elapsedMs: 0,
};

let printed = false;
function finish(code) {
  if (printed) return;
  printed = true;
  result.elapsedMs = Date.now() - t0;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = code;
}
function step(name) {
  result.steps.push({ name, atMs: Date.now() - t0 });
  process.stderr.write(`web-e2e: ${name}\n`);
}
function remainingMs() {
  const left = deadline - Date.now();
  if (left <= 0) throw new Error(`timeout after ${opts.timeout}s`);
  return left;
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const hardStop = setTimeout(() => {
  result.errors.push({ type: 'harness', details: `hard timeout after ${opts.timeout + 30}s (browser hung?)`, fatal: true });
  finish(1);
  process.exit(1);
}, (opts.timeout + 30) * 1000);
hardStop.unref();

/**
 * A TCP relay to BASE_URL's host: limits client→server bytes to `rate` bytes/s
 * while `limited` is set, and `cut()` drops every connection (and refuses new
 * ones until `restore()`), as a lost network does.
 */
async function startRelay(target) {
  const sockets = new Set();
  const relay = { limited: false, rate: Infinity, down: false, nextFreeMs: 0, forwarded: 0, holdAt: Infinity, holding: false };
  // Client→server bytes past `holdAt` wait (the sockets paused) until
  // `release()`: however slowly this script polls on a busy machine, the
  // upload cannot run past the pause and the network cut it is meant to meet.
  const held = [];
  const server = createServer((client) => {
    if (relay.down) return client.destroy();
    const upstream = connect(Number(target.port || 80), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const forget = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', forget).on('error', forget);
    upstream.on('close', forget).on('error', forget);
    upstream.pipe(client);
    client.on('data', (chunk) => {
      if (relay.forwarded >= relay.holdAt) {
        relay.holding = true;
        client.pause();
        held.push({
          client,
          upstream,
          release: () => {
            if (!upstream.destroyed) upstream.write(chunk);
            client.resume();
          },
        });
        return;
      }
      relay.forwarded += chunk.length;
      if (!relay.limited) {
        upstream.write(chunk);
        return;
      }
      const now = Date.now();
      const start = Math.max(now, relay.nextFreeMs);
      relay.nextFreeMs = start + (chunk.length / relay.rate) * 1000;
      client.pause();
      setTimeout(() => {
        if (!upstream.destroyed) upstream.write(chunk);
        client.resume();
      }, relay.nextFreeMs - now);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.port = server.address().port;
  relay.cut = () => {
    relay.down = true;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  // Holds client→server bytes once `bytes` more have passed.
  relay.hold = (bytes) => {
    relay.holdAt = relay.forwarded + bytes;
  };
  relay.release = () => {
    relay.holdAt = Infinity;
    relay.holding = false;
    // Chunks held on sockets that were closed meanwhile are dropped with them.
    for (const entry of held.splice(0)) entry.release();
  };
  // Drops the connections whose bytes are held instead of letting them
  // through: after a pause their request is aborted, and the bytes the
  // browser had queued on them would only eat the next hold's budget.
  relay.dropHeld = () => {
    for (const entry of held.splice(0)) {
      entry.client.destroy();
      entry.upstream.destroy();
    }
    relay.holdAt = Infinity;
    relay.holding = false;
  };
  relay.restore = () => {
    relay.down = false;
    relay.nextFreeMs = 0;
    relay.release();
  };
  relay.close = () => {
    relay.cut();
    server.close();
  };
  return relay;
}

/**
 * The offset the server holds for the upload in progress (tus HEAD, straight to
 * BASE_URL with the API key): the browser's progress counts bytes handed to the
 * socket, which runs ahead of what the server has.
 */
async function serverOffset(page) {
  const uploadUrl = await page.evaluate(() => {
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key && key.startsWith('tus::')) return JSON.parse(localStorage.getItem(key) || '{}').uploadUrl ?? null;
    }
    return null;
  });
  if (!uploadUrl) return null;
  const direct = new URL(new URL(uploadUrl).pathname, opts.baseUrl);
  try {
    const response = await fetch(direct, {
      method: 'HEAD',
      headers: { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${opts.apiKey}` },
    });
    const offset = response.headers.get('upload-offset');
    return offset === null ? null : Number(offset);
  } catch {
    return null;
  }
}

/** Reads the first upload row's numbers from the DOM. */
function readUpload(page) {
  return page.evaluate(() => {
    const row = document.querySelector('[data-testid="upload-item"]');
    if (!row) return null;
    const link = row.querySelector('[data-testid="upload-video-link"]');
    return {
      status: row.dataset.status,
      sent: Number(row.dataset.bytesSent || 0),
      total: Number(row.dataset.bytesTotal || 0),
      resumedFrom: row.dataset.resumedFrom ? Number(row.dataset.resumedFrom) : null,
      videoId: link ? link.dataset.videoId : null,
      error: row.querySelector('[role="alert"]')?.textContent ?? null,
    };
  });
}

let browser = null;
let anonymousBrowser = null;
let relay = null;
const userDataDir = mkdtempSync(join(tmpdir(), 'reel-web-e2e-'));
let exitCode = 1;
try {
  relay = await startRelay(new URL(opts.baseUrl));
  const appUrl = `http://127.0.0.1:${relay.port}`;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    timeout: 30_000,
  });
  const context = browser;
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => result.errors.push({ type: 'pageerror', details: String(err?.message || err), fatal: true }));
  page.on('requestfailed', (request) => {
    if (new URL(request.url()).pathname.startsWith('/files/')) result.tusRequestsFailed += 1;
  });
  if (process.env.REEL_E2E_DEBUG) {
    page.on('request', (r) => r.url().includes('/files/') && process.stderr.write(`req ${r.method()} ${r.url().slice(-12)} off=${r.headers()['upload-offset']} ${Date.now() - t0}\n`));
    page.on('requestfailed', (r) => r.url().includes('/files/') && process.stderr.write(`failed ${r.method()} ${r.failure()?.errorText} ${Date.now() - t0}\n`));
    page.on('response', async (r) => r.url().includes('/files/') && process.stderr.write(`resp ${r.request().method()} ${r.status()} off=${(await r.allHeaders())['upload-offset']} ${Date.now() - t0}\n`));
  }
  page.on('crash', () => result.errors.push({ type: 'harness', details: 'page crashed', fatal: true }));

  // 1. Sign in through the page.
  step('sign in');
  await page.goto(`${appUrl}/upload`, { waitUntil: 'load', timeout: 20_000 });
  await page.waitForURL(/\/signin\?next=/, { timeout: 10_000 });
  await page.fill('[data-testid="api-key-input"]', opts.apiKey);
  await page.click('[data-testid="signin-submit"]');
  await page.waitForURL(/\/upload$/, { timeout: 10_000 });
  await page.waitForSelector('[data-testid="file-input"]', { state: 'attached', timeout: 10_000 });

  // 2. Upload with a throttled uplink, as a private video.
  await page.check('[data-testid="visibility-private"]');
  const uploadBytesPerSecond = Math.max(64 * 1024, Math.floor(fileSize / UPLOAD_SECONDS));
  relay.rate = uploadBytesPerSecond;
  relay.limited = true;
  relay.hold(Math.floor(fileSize * PAUSE_AT_FRACTION));
  step(`upload at ${uploadBytesPerSecond} B/s`);
  await page.setInputFiles('[data-testid="file-input"]', opts.videoFile);

  let maxSentBeforeOffline = 0;
  let pauseDone = false;
  for (;;) {
    remainingMs();
    const upload = await readUpload(page);
    if (upload) {
      result.uploadedBytes = upload.sent;
      if (upload.status === 'failed') throw new Error(`upload failed: ${upload.error}`);
      if (upload.videoId) {
        result.videoId = upload.videoId;
        // The browser counts bytes handed to its socket, so it may have
        // "sent" the whole file before the cut while the server still lacked
        // some: then finishing after the cut is the continuation.
        if (
          result.offlineAt !== null &&
          result.interrupted &&
          result.serverOffsetAtCut !== null &&
          result.serverOffsetAtCut < fileSize
        ) {
          result.resumed = true;
          step(`finished after the cut (the server had ${result.serverOffsetAtCut} of ${fileSize} bytes at the cut)`);
        }
        break;
      }
      if (
        pauseDone &&
        result.offlineAt === null &&
        upload.total > 0 &&
        (relay.holding || upload.sent >= upload.total * OFFLINE_AT_FRACTION)
      ) {
        // 3. Cut the network; tus-js-client must retry and continue on its own.
        result.offlineAt = upload.sent;
        maxSentBeforeOffline = upload.sent;
        step(`offline at ${upload.sent} bytes`);
        await context.setOffline(true);
        relay.cut();
        const offlineUntil = Date.now() + OFFLINE_MS;
        while (Date.now() < offlineUntil) {
          const during = await readUpload(page);
          if (during && !result.statusesWhileOffline.includes(during.status)) result.statusesWhileOffline.push(during.status);
          await sleep(100);
        }
        result.serverOffsetAtCut = await serverOffset(page);
        result.interrupted = result.statusesWhileOffline.some((status) => status === 'retrying' || status === 'offline');
        relay.restore();
        await context.setOffline(false);
        step('online again');
      } else if (result.offlineAt !== null && !result.resumed && upload.sent > maxSentBeforeOffline && result.interrupted) {
        result.resumed = true;
        step(`resumed, ${upload.sent} bytes`);
      } else if (
        !pauseDone &&
        upload.status === 'uploading' &&
        (relay.holding || upload.sent >= upload.total * PAUSE_AT_FRACTION) &&
        upload.sent < upload.total
      ) {
        // 4. Pause and resume with the buttons.
        pauseDone = true;
        await page.click('[data-testid="upload-pause"]');
        await sleep(300);
        const paused = await readUpload(page);
        result.pausedAt = paused.sent;
        step(`paused at ${paused.sent} bytes (${paused.status})`);
        await sleep(1500);
        const stillPaused = await readUpload(page);
        if (stillPaused.status !== 'paused') throw new Error(`pause did not hold: status ${stillPaused.status}`);
        if (stillPaused.sent > paused.sent) throw new Error(`bytes kept flowing while paused: ${paused.sent} → ${stillPaused.sent}`);
        // The browser may have handed the whole file to its socket before
        // the pause (its count is then the file size and cannot grow): the
        // server's offset growing is the other sign that bytes flow again.
        const serverAtPause = await serverOffset(page);
        relay.dropHeld();
        const forwardedAtResume = relay.forwarded;
        relay.hold(Math.floor(fileSize * (OFFLINE_AT_FRACTION - PAUSE_AT_FRACTION)));
        await page.click('[data-testid="upload-resume"]');
        const pausedBytes = stillPaused.sent;
        const resumeDeadline = Date.now() + 60_000;
        for (;;) {
          const now = await readUpload(page);
          if (now.videoId || now.sent > pausedBytes) break;
          const serverNow = await serverOffset(page);
          if (serverAtPause !== null && serverNow !== null && serverNow > serverAtPause) break;
          // The server may count the new PATCH's bytes only when a part is
          // complete, and the relay holds them at the next step's point:
          // new bytes through the relay (the page's other requests are a few
          // kilobytes) are the sign that the upload flows again.
          if (relay.forwarded - forwardedAtResume > RESUMED_BYTES) break;
          if (now.status === 'failed') throw new Error(`upload failed after resume: ${now.error}`);
          if (Date.now() > resumeDeadline) throw new Error('upload did not continue after Resume');
          await sleep(200);
        }
        result.pauseResumed = true;
        step('resumed after pause');
      }
    }
    await sleep(150);
  }
  relay.limited = false;
  const finalUpload = await readUpload(page);
  result.uploadedBytes = finalUpload.sent;
  step(`uploaded, video ${result.videoId}`);
  if (!result.interrupted) throw new Error('the network cut did not interrupt the upload (it never showed retrying/offline)');
  if (!result.resumed) throw new Error('the upload did not continue past the network cut');

  // 5. The library shows the video; wait for `ready`.
  await page.click('nav >> text=Library');
  await page.waitForURL(`${appUrl}/`, { timeout: 10_000 });
  const card = `[data-testid="video-card"][data-video-id="${result.videoId}"]`;
  await page.waitForSelector(card, { timeout: 30_000 });
  let lastState = null;
  for (;;) {
    remainingMs();
    const state = await page.getAttribute(card, 'data-state');
    if (state !== lastState) {
      step(`library: ${state}`);
      lastState = state;
    }
    if (state === 'ready') break;
    if (state === 'failed' || state === 'cancelled') {
      const error = await page.textContent(`${card} [data-testid="video-error"]`).catch(() => null);
      throw new Error(`video ${state}: ${error}`);
    }
    await sleep(1000);
  }
  const privacy = result.private;
  privacy.libraryVisibility = await page.getAttribute(card, 'data-visibility');

  // 6. Watch it to the end. The page mints signed URLs with the session; the
  // mint is made to ask for 4 s tokens and the page buffers 2 s ahead
  // (`?buffer=2`), so segments are fetched after the first token ended: they
  // must carry a renewed one (a refused segment is a fatal player error).
  const href = await page.getAttribute(`${card} [data-testid="video-link"]`, 'href');
  if (href !== `/watch/${result.videoId}`) throw new Error(`the library links the video to ${href}`);
  const mediaPrefix = `/v/${result.videoId}/`;
  const requestedAt = new Map();
  let firstMint = null;
  const tokens = new Set();
  let recording = true;
  page.on('request', (request) => requestedAt.set(request, Date.now()));
  await page.route('**/v1/videos/*/playback', (route) =>
    route.continue({ postData: JSON.stringify({ ttl_seconds: TOKEN_TTL_SECONDS }) }),
  );
  page.on('response', async (response) => {
    if (!recording) return;
    const path = new URL(response.url()).pathname;
    const at = requestedAt.get(response.request()) ?? Date.now();
    if (path.endsWith('/playback') && response.request().method() === 'POST') {
      privacy.mints += 1;
      const body = await response.json().catch(() => ({}));
      if (!firstMint && body.token) firstMint = { token: body.token, at: Date.now() };
    } else if (path.startsWith(mediaPrefix)) {
      const signed = /^\/v\/[^/]+\/t\/([^/]+)\//.exec(path);
      if (!signed) privacy.unsignedRequests += 1;
      if (path.endsWith('/manifest.mpd') && response.status() < 400) privacy.dashManifests += 1;
      else tokens.add(signed[1]);
      if (response.status() >= 400) privacy.refusals += 1;
      // Certainly after the first token ended (its exp is at most its lifetime after its arrival).
      if (firstMint && at > firstMint.at + TOKEN_TTL_SECONDS * 1000) privacy.lateRequests += 1;
    }
  });
  await page.goto(`${appUrl}/watch/${result.videoId}?buffer=2`, { waitUntil: 'load', timeout: 20_000 });
  await page.waitForSelector('[data-testid="player-video"]', { timeout: 20_000 });
  step('watch page');
  await page.evaluate((rate) => {
    const media = document.querySelector('[data-testid="player-video"]');
    media.muted = true;
    window.__reelEnded = false;
    media.addEventListener('ended', () => (window.__reelEnded = true));
    const apply = () => {
      media.defaultPlaybackRate = rate;
      media.playbackRate = rate;
    };
    apply();
    media.addEventListener('loadedmetadata', apply);
    media.addEventListener('playing', apply, { once: true });
    void media.play().catch(() => undefined);
  }, PLAYBACK_RATE);
  try {
    await page.waitForFunction(
      () => {
        const media = document.querySelector('[data-testid="player-video"]');
        return window.__reelEnded || Number(media?.dataset.errors || 0) > 0 || !!document.querySelector('[data-testid="player-error"]');
      },
      null,
      { timeout: remainingMs(), polling: 200 },
    );
  } catch (e) {
    if (!/Timeout/i.test(String(e?.message))) throw e;
    result.errors.push({ type: 'harness', details: `no 'ended' within the timeout`, fatal: true });
  }
  const playback = await page.evaluate(() => {
    const media = document.querySelector('[data-testid="player-video"]');
    return {
      ended: !!window.__reelEnded,
      currentTime: media.currentTime,
      duration: Number.isFinite(media.duration) ? media.duration : null,
      errors: Number(media.dataset.errors || 0),
      levelHeight: media.dataset.levelHeight ? Number(media.dataset.levelHeight) : null,
      playerError: document.querySelector('[data-testid="player-error"]')?.textContent ?? null,
    };
  });
  Object.assign(result, { ended: playback.ended, currentTime: playback.currentTime, duration: playback.duration, levelHeight: playback.levelHeight });
  if (playback.errors > 0 || playback.playerError) {
    result.errors.push({ type: 'player', details: playback.playerError || `${playback.errors} fatal player error(s)`, fatal: true });
  }
  // 6b. Shaka (DASH) plays it as well, with the token of the moment: from
  // the start again, until 1 s of media has played.
  if (playback.ended) {
    await page.click('[data-testid="engine-dash"]');
    await page.waitForSelector('[data-testid="player-video"][data-engine="dash"]', { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="player-video"]').readyState >= 1, null, { timeout: 20_000 });
    await page.evaluate(() => {
      const media = document.querySelector('[data-testid="player-video"]');
      media.currentTime = 0;
      void media.play().catch(() => undefined);
    });
    await page.waitForFunction(
      () => {
        const media = document.querySelector('[data-testid="player-video"]');
        return (media.currentTime > 1 && !media.paused) || !!document.querySelector('[data-testid="player-error"]');
      },
      null,
      { timeout: 20_000, polling: 100 },
    );
    privacy.dashPlayedTo = await page.evaluate(() => {
      const media = document.querySelector('[data-testid="player-video"]');
      return document.querySelector('[data-testid="player-error"]') ? null : media.currentTime;
    });
    step(`DASH (Shaka) played to ${privacy.dashPlayedTo}`);
  }
  recording = false;
  privacy.tokensUsed = tokens.size;
  step(`played: ended=${playback.ended} currentTime=${playback.currentTime} duration=${playback.duration}; ${privacy.mints} mints, ${privacy.tokensUsed} tokens used, ${privacy.lateRequests} requests after the first token ended`);
  const reachedEnd = playback.duration !== null && playback.currentTime >= playback.duration - 0.5;
  if (!reachedEnd) result.errors.push({ type: 'harness', details: `currentTime ${playback.currentTime} did not reach duration ${playback.duration}`, fatal: true });

  // 7. Anonymous: another browser, no session. The watch page says why there
  // is nothing to play and asks for no media; the library does not list it.
  const { chromium: anonymousChromium } = await import('playwright-core');
  anonymousBrowser = await anonymousChromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  const anonymous = await anonymousBrowser.newPage();
  let anonymousMedia = 0;
  anonymous.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith(mediaPrefix)) anonymousMedia += 1;
  });
  await anonymous.goto(`${appUrl}/watch/${result.videoId}`, { waitUntil: 'load', timeout: 20_000 });
  await anonymous.waitForSelector('[data-testid="watch-unavailable"]', { timeout: 20_000 });
  privacy.anonymousMessage = (await anonymous.textContent('[data-testid="watch-unavailable"]'))?.trim() ?? null;
  privacy.anonymousPlayer = (await anonymous.$('[data-testid="player-video"]')) !== null;
  privacy.anonymousMediaRequests = anonymousMedia;
  await anonymous.goto(`${appUrl}/`, { waitUntil: 'load', timeout: 20_000 });
  await anonymous.waitForSelector('.video-grid, .empty', { timeout: 20_000 });
  privacy.anonymousListed = (await anonymous.$(card)) !== null;
  step(`anonymous: "${privacy.anonymousMessage}", player ${privacy.anonymousPlayer}, ${anonymousMedia} media requests, listed ${privacy.anonymousListed}`);

  // 8. The owner makes it public on the watch page (PATCH with the session
  // cookie); the anonymous watch page then loads it.
  await page.selectOption('[data-testid="visibility-select"]', 'public');
  await page.waitForSelector('[data-testid="video-visibility"][data-visibility="public"]', { timeout: 10_000 });
  await anonymous.goto(`${appUrl}/watch/${result.videoId}`, { waitUntil: 'load', timeout: 20_000 });
  await anonymous.waitForSelector('[data-testid="player-video"]', { timeout: 20_000 });
  await anonymous.waitForFunction(() => document.querySelector('[data-testid="player-video"]').readyState >= 1, null, {
    timeout: 20_000,
  });
  privacy.publicReadyState = await anonymous.evaluate(() => document.querySelector('[data-testid="player-video"]').readyState);
  step(`public: the anonymous page loaded the video (readyState ${privacy.publicReadyState})`);

  const privateOk =
    privacy.libraryVisibility === 'private' &&
    privacy.mints >= 2 &&
    privacy.tokensUsed >= 2 &&
    privacy.lateRequests >= 1 &&
    privacy.refusals === 0 &&
    privacy.unsignedRequests === 0 &&
    /private/.test(privacy.anonymousMessage ?? '') &&
    privacy.anonymousPlayer === false &&
    privacy.anonymousMediaRequests === 0 &&
    privacy.anonymousListed === false &&
    privacy.publicReadyState >= 1 &&
    privacy.dashPlayedTo > 1 &&
    privacy.dashManifests >= 1;
  if (!privateOk) result.errors.push({ type: 'harness', details: 'private playback checks failed (see private)', fatal: true });
  result.ok = result.interrupted && result.resumed && result.pauseResumed && playback.ended && reachedEnd && privateOk && !result.errors.some((e) => e.fatal);
  exitCode = result.ok ? 0 : 1;
} catch (e) {
  result.errors.push({ type: 'harness', details: String(e?.message || e).split('\n')[0], fatal: true });
  exitCode = 1;
} finally {
  for (const open of [browser, anonymousBrowser]) {
    try {
      if (open) await open.close();
    } catch {
      // The browser is gone already.
    }
  }
  if (relay) relay.close();
  try {
    rmSync(userDataDir, { recursive: true, force: true });
  } catch {
    // A leftover temp dir is harmless.
  }
}
finish(exitCode);
