#!/usr/bin/env node
// Adaptive bitrate check of reel's web app in headless Debian chromium: open the
// watch page of a video, play it muted, throttle the download rate (CDP
// Network.emulateNetworkConditions) until the player drops to the lowest
// rendition, lift the throttle and wait until it climbs back up. Prints ONE JSON
// object on stdout with the level heights over time.
//
//   node tests/clients/web-abr.mjs BASE_URL VIDEO_ID [--timeout SECONDS] [--low-kbps N]
//                                  [--buffer SECONDS] [--rate N]
//
// --timeout (default 240): overall wall-clock limit.
// --low-kbps (default 250): the throttled download rate in kbit/s.
// --buffer (default 6): passed to the watch page as ?buffer=, which caps how much
//   media hls.js buffers ahead; with less buffer the player feels the throttle
//   (and its lifting) sooner, so the run is short and reproducible.
// --rate (default 2): playbackRate; faster playback means more segment downloads
//   per second of wall clock, so the bandwidth estimate moves faster.
//
// The run: play until the top rendition plays (or 20 s pass), throttle until the
// lowest rendition plays, lift the throttle until a higher one plays again. The
// video restarts from 0 if it ends before that (a 60 s video is short at rate 2).
//
// Output: {ok, videoId, renditions:[heights], lowest, highest, throttleKbps,
//          samples:[{atMs, height, currentTime, buffer, bandwidth, phase}] (on change),
//          steppedDown, steppedUp, throttledAtMs, lowestAtMs, liftedAtMs, climbedAtMs,
//          errors:[...], elapsedMs}
// Exit code: 0 only if it saw the step down and the step back up without a fatal
// player error; 1 otherwise; 2 on bad usage.
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const WARMUP_MS = 20_000;
const SAMPLE_MS = 250;

function usage(msg) {
  if (msg) process.stderr.write(`web-abr: ${msg}\n`);
  process.stderr.write(
    'usage: web-abr.mjs BASE_URL VIDEO_ID [--timeout SECONDS] [--low-kbps N] [--buffer SECONDS] [--rate N]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { baseUrl: null, videoId: null, timeout: 240, lowKbps: 250, buffer: 6, rate: 2 };
  const numeric = { '--timeout': 'timeout', '--low-kbps': 'lowKbps', '--buffer': 'buffer', '--rate': 'rate' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? arg.split(/=(.*)/s) : [arg, undefined];
    if (numeric[flag]) {
      const value = Number(inline ?? argv[++i]);
      if (!Number.isFinite(value) || value <= 0) usage(`${flag}: not a positive number`);
      opts[numeric[flag]] = value;
    } else if (arg === '-h' || arg === '--help') usage();
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else if (opts.baseUrl === null) opts.baseUrl = arg.replace(/\/+$/, '');
    else if (opts.videoId === null) opts.videoId = arg;
    else usage(`unexpected argument ${arg}`);
  }
  if (!opts.baseUrl || !opts.videoId) usage('expected BASE_URL VIDEO_ID');
  if (opts.rate > 16) usage('--rate must be <= 16');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const t0 = Date.now();
const deadline = t0 + opts.timeout * 1000;

const result = {
  ok: false,
  videoId: opts.videoId,
  renditions: [],
  lowest: null,
  highest: null,
  throttleKbps: opts.lowKbps,
  buffer: opts.buffer,
  rate: opts.rate,
  samples: [],
  steppedDown: false,
  steppedUp: false,
  throttledAtMs: null,
  lowestAtMs: null,
  liftedAtMs: null,
  climbedAtMs: null,
  restarts: 0,
  errors: [],
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
const log = (msg) => process.stderr.write(`web-abr: ${msg}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const hardStop = setTimeout(() => {
  result.errors.push({ type: 'harness', details: `hard timeout after ${opts.timeout + 30}s (browser hung?)`, fatal: true });
  finish(1);
  process.exit(1);
}, (opts.timeout + 30) * 1000);
hardStop.unref();

function readPlayer(page) {
  return page.evaluate(() => {
    const media = document.querySelector('[data-testid="player-video"]');
    if (!media) return null;
    let buffer = 0;
    for (let i = 0; i < media.buffered.length; i++) {
      if (media.currentTime >= media.buffered.start(i) - 0.1 && media.currentTime <= media.buffered.end(i)) {
        buffer = media.buffered.end(i) - media.currentTime;
      }
    }
    return {
      height: media.dataset.levelHeight ? Number(media.dataset.levelHeight) : null,
      errors: Number(media.dataset.errors || 0),
      currentTime: media.currentTime,
      ended: media.ended,
      paused: media.paused,
      buffer: Math.round(buffer * 10) / 10,
      bandwidth: document.querySelector('[data-testid="stats-bandwidth"]')?.textContent ?? null,
      playerError: document.querySelector('[data-testid="player-error"]')?.textContent ?? null,
    };
  });
}

let context = null;
const userDataDir = mkdtempSync(join(tmpdir(), 'reel-web-abr-'));
let exitCode = 1;
try {
  const videoResponse = await fetch(`${opts.baseUrl}/v1/videos/${encodeURIComponent(opts.videoId)}`);
  if (!videoResponse.ok) throw new Error(`GET /v1/videos/${opts.videoId} answered ${videoResponse.status}`);
  const video = await videoResponse.json();
  result.renditions = video.renditions.map((r) => r.height).sort((a, b) => a - b);
  if (result.renditions.length < 2) throw new Error(`video has ${result.renditions.length} rendition(s); need at least 2`);
  result.lowest = result.renditions[0];
  result.highest = result.renditions[result.renditions.length - 1];

  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    timeout: 30_000,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => result.errors.push({ type: 'pageerror', details: String(err?.message || err), fatal: true }));
  page.on('crash', () => result.errors.push({ type: 'harness', details: 'page crashed', fatal: true }));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const setDownload = (kbps) =>
    cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: kbps > 0 ? 20 : 0,
      downloadThroughput: kbps > 0 ? (kbps * 1000) / 8 : -1,
      uploadThroughput: -1,
    });

  await page.goto(`${opts.baseUrl}/watch/${encodeURIComponent(opts.videoId)}?buffer=${opts.buffer}`, {
    waitUntil: 'load',
    timeout: 20_000,
  });
  await page.waitForSelector('[data-testid="player-video"]', { timeout: 20_000 });
  await page.evaluate((rate) => {
    const media = document.querySelector('[data-testid="player-video"]');
    media.muted = true;
    const apply = () => {
      media.defaultPlaybackRate = rate;
      media.playbackRate = rate;
    };
    apply();
    media.addEventListener('loadedmetadata', apply);
    // Keep going to the end of the run: a short video starts over.
    media.addEventListener('ended', () => {
      window.__reelRestarts = (window.__reelRestarts || 0) + 1;
      media.currentTime = 0;
      void media.play().catch(() => undefined);
    });
    void media.play().catch(() => undefined);
  }, opts.rate);
  // The stats panel shows the bandwidth estimate; open it with its shortcut.
  await page.keyboard.press('s');

  let phase = 'warmup';
  let phaseStart = Date.now();
  let lastKey = '';
  for (;;) {
    if (Date.now() > deadline) throw new Error(`timeout after ${opts.timeout}s in phase ${phase}`);
    const state = await readPlayer(page);
    if (state) {
      const key = `${state.height}|${phase}`;
      if (key !== lastKey) {
        lastKey = key;
        result.samples.push({
          atMs: Date.now() - t0,
          height: state.height,
          currentTime: Math.round(state.currentTime * 10) / 10,
          buffer: state.buffer,
          bandwidth: state.bandwidth,
          phase,
        });
        log(`${phase}: ${state.height}p at ${state.currentTime.toFixed(1)} s, buffer ${state.buffer} s, estimate ${state.bandwidth}`);
      }
      if (state.errors > 0 || state.playerError) {
        result.errors.push({ type: 'player', details: state.playerError || `${state.errors} fatal player error(s)`, fatal: true });
        break;
      }
      if (phase === 'warmup' && state.height !== null && (state.height > result.lowest || Date.now() - phaseStart > WARMUP_MS)) {
        // Wait for the top rendition up to WARMUP_MS; anything above the lowest will do after that.
        if (state.height === result.highest || Date.now() - phaseStart > WARMUP_MS) {
          if (state.height === result.lowest) throw new Error('never left the lowest rendition before the throttle');
          await setDownload(opts.lowKbps);
          phase = 'throttled';
          phaseStart = Date.now();
          result.throttledAtMs = Date.now() - t0;
          log(`throttle to ${opts.lowKbps} kbit/s`);
        }
      } else if (phase === 'throttled' && state.height === result.lowest) {
        result.steppedDown = true;
        result.lowestAtMs = Date.now() - t0;
        await setDownload(0);
        phase = 'lifted';
        phaseStart = Date.now();
        result.liftedAtMs = Date.now() - t0;
        log('throttle lifted');
      } else if (phase === 'lifted' && state.height !== null && state.height > result.lowest) {
        result.steppedUp = true;
        result.climbedAtMs = Date.now() - t0;
        log(`climbed back to ${state.height}p`);
        break;
      }
    }
    await sleep(SAMPLE_MS);
  }
  result.restarts = await page.evaluate(() => window.__reelRestarts || 0);
  result.ok = result.steppedDown && result.steppedUp && !result.errors.some((e) => e.fatal);
  exitCode = result.ok ? 0 : 1;
} catch (e) {
  result.errors.push({ type: 'harness', details: String(e?.message || e).split('\n')[0], fatal: true });
  exitCode = 1;
} finally {
  try {
    if (context) await context.close();
  } catch {
    // The browser is gone already.
  }
  try {
    rmSync(userDataDir, { recursive: true, force: true });
  } catch {
    // A leftover temp dir is harmless.
  }
}
finish(exitCode);
