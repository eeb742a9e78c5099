#!/usr/bin/env node
// Play an HLS stream to the end in headless Debian chromium with hls.js, and report
// what happened as ONE JSON object on stdout.
//
//   node tests/clients/play-hls.mjs URL [--timeout SECONDS] [--rate N] [--stall-timeout SECONDS]
//                                       [--hls-config JSON] [--progress]
//
// --timeout (default 60): overall wall-clock limit for reaching `ended`.
// --rate (default 1, max 16): playbackRate; 8 finishes a 10 s clip in ~2.5 s.
// --stall-timeout (default off): give up early (fatal) when currentTime has not
//   advanced for this many wall-clock seconds (startup counts too).
// --hls-config: a JSON object merged into the hls.js config (e.g. '{"maxBufferLength":4}').
// --progress: print `progress <currentTime> <host of the last fragment>` lines on stderr
//   every 250 ms, so a test can act mid-stream (e.g. stop an edge).
// The JSON also counts fragments per host (`fragHosts`) and steering manifests loaded.
//
// Exit code: 0 only if the <video> fired `ended` and hls.js raised no fatal error;
// 1 otherwise (including timeout); 2 on bad usage.
// Diagnostics (not JSON) go to stderr only.
//
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { createServer } from 'node:http';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

function usage(msg) {
  if (msg) process.stderr.write(`play-hls: ${msg}\n`);
  process.stderr.write('usage: play-hls.mjs URL [--timeout SECONDS] [--rate N] [--stall-timeout SECONDS]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { url: null, timeout: 60, rate: 1, stall: 0, hlsConfig: {}, progress: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const [k, v] = a.includes('=') ? a.split(/=(.*)/s) : [a, argv[++i]];
      if (v === undefined) usage(`${k} needs a value`);
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) usage(`${k}: not a positive number: ${v}`);
      return n;
    };
    if (a === '--timeout' || a.startsWith('--timeout=')) opts.timeout = val();
    else if (a === '--rate' || a.startsWith('--rate=')) opts.rate = val();
    else if (a === '--stall-timeout' || a.startsWith('--stall-timeout=')) opts.stall = val();
    else if (a === '--progress') opts.progress = true;
    else if (a === '--hls-config' || a.startsWith('--hls-config=')) {
      const v = a.includes('=') ? a.split(/=(.*)/s)[1] : argv[++i];
      try { opts.hlsConfig = JSON.parse(v); } catch { usage(`--hls-config: not JSON: ${v}`); }
    }
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (opts.url === null) opts.url = a;
    else usage(`unexpected argument ${a}`);
  }
  if (!opts.url) usage('missing URL');
  if (opts.rate > 16) usage('--rate must be <= 16 (chromium mutes/limits beyond that)');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const t0 = Date.now();

// Result skeleton; filled in as we go so that any failure still prints valid JSON.
const result = {
  url: opts.url,
  ended: false,
  currentTime: null,
  duration: null,
  buffered: [],
  errors: [],
  levels: [],
  audioTracks: 0,
  decodedFrames: 0,
  droppedFrames: 0,
  levelSwitches: [],
  fragHosts: {},
  steeringManifests: 0,
  playbackRate: opts.rate,
  timedOut: false,
  elapsedMs: 0,
  browserVersion: null,
  hlsjsVersion: null,
};

let printed = false;
function finish(code) {
  if (printed) return;
  printed = true;
  result.elapsedMs = Date.now() - t0;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = code;
}
function fatalHarness(msg) {
  result.errors.push({ type: 'harness', details: String(msg), fatal: true });
}

// Hard stop in case the browser itself hangs: timeout + 30 s for launch/teardown.
const hardStop = setTimeout(() => {
  fatalHarness(`hard timeout after ${opts.timeout + 30}s (browser hung?)`);
  result.timedOut = true;
  finish(1);
  process.exit(1);
}, (opts.timeout + 30) * 1000);
hardStop.unref();

// --- tiny page server on 127.0.0.1:0 (gives the page a real http origin) ---
const hlsJsPath = join(HERE, 'node_modules', 'hls.js', 'dist', 'hls.min.js');
let hlsJs;
try {
  hlsJs = readFileSync(hlsJsPath);
} catch (e) {
  fatalHarness(`cannot read ${hlsJsPath}: run scripts/install-test-clients.sh (${e.message})`);
  finish(1);
  process.exit(1);
}
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>reel play-hls</title>
<script src="/hls.min.js"></script></head>
<body><video id="v" muted playsinline width="640" height="360"></video></body></html>`;
const server = createServer((req, res) => {
  if (req.url === '/hls.min.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    res.end(hlsJs);
  } else if (req.url === '/favicon.ico') {
    res.writeHead(204);
    res.end();
  } else if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

// Runs inside the page. Sets up hls.js and records everything on window.__reel.
function pageMain({ url, rate, stall, hlsConfig }) {
  const st = (window.__reel = {
    done: false, ended: false, errors: [], levels: [], audioTracks: 0,
    levelSwitches: [], hlsjsVersion: null, fragHosts: {}, lastHost: null, steeringManifests: 0,
  });
  const video = document.getElementById('v');
  video.muted = true;
  video.defaultPlaybackRate = rate;
  video.playbackRate = rate;
  const stop = () => { st.done = true; };

  video.addEventListener('ended', () => { st.ended = true; stop(); });
  video.addEventListener('error', () => {
    const e = video.error;
    st.errors.push({ type: 'mediaError', details: e ? `code ${e.code}: ${e.message}` : 'unknown', fatal: true });
    stop();
  });
  // loading a source resets playbackRate to defaultPlaybackRate; keep forcing ours.
  video.addEventListener('loadedmetadata', () => { video.playbackRate = rate; });

  if (stall > 0) {
    let last = -1;
    let since = performance.now();
    const iv = setInterval(() => {
      if (st.done) return clearInterval(iv);
      if (video.currentTime !== last) {
        last = video.currentTime;
        since = performance.now();
        return;
      }
      if (performance.now() - since > stall * 1000) {
        st.errors.push({ type: 'harness', details: `stalled: currentTime stuck at ${video.currentTime} for ${stall}s`, fatal: true });
        clearInterval(iv);
        stop();
      }
    }, 250);
  }

  if (typeof Hls === 'undefined') {
    st.errors.push({ type: 'harness', details: 'hls.js did not load', fatal: true });
    return stop();
  }
  st.hlsjsVersion = Hls.version;
  if (!Hls.isSupported()) {
    st.errors.push({ type: 'harness', details: 'Hls.isSupported() is false (no MSE?)', fatal: true });
    return stop();
  }
  const hls = new Hls(Object.assign({ debug: false, enableWorker: true, startLevel: -1 }, hlsConfig));
  hls.on(Hls.Events.FRAG_LOADED, (_ev, d) => {
    const host = new URL(d.frag.url).host;
    st.fragHosts[host] = (st.fragHosts[host] || 0) + 1;
    st.lastHost = host;
  });
  if (Hls.Events.STEERING_MANIFEST_LOADED) {
    hls.on(Hls.Events.STEERING_MANIFEST_LOADED, () => { st.steeringManifests += 1; });
  }
  window.__hls = hls;
  hls.on(Hls.Events.ERROR, (_ev, d) => {
    st.errors.push({
      type: d.type, details: d.details, fatal: !!d.fatal,
      url: (d.url || (d.context && d.context.url) || (d.frag && d.frag.url) || undefined),
      httpStatus: d.response ? d.response.code : undefined,
      reason: d.reason || (d.error && d.error.message) || undefined,
    });
    if (d.fatal) stop();
  });
  hls.on(Hls.Events.MANIFEST_PARSED, (_ev, d) => {
    st.levels = d.levels.map((l) => ({
      height: l.height || null,
      width: l.width || null,
      bitrate: l.bitrate,
      codecs: (l.attrs && l.attrs.CODECS) || [l.videoCodec, l.audioCodec].filter(Boolean).join(','),
    }));
    const p = video.play();
    if (p && p.catch) p.catch((e) => st.errors.push({ type: 'playError', details: String(e), fatal: false }));
  });
  hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, (_ev, d) => { st.audioTracks = d.audioTracks.length; });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_ev, d) => {
    st.levelSwitches.push({ level: d.level, at: video.currentTime });
  });
  hls.attachMedia(video);
  hls.loadSource(url);
}

function pageSnapshot() {
  const v = document.getElementById('v');
  const st = window.__reel || {};
  const buffered = [];
  for (let i = 0; v && i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
  const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  const hls = window.__hls;
  return {
    ended: !!(st.ended || (v && v.ended)),
    currentTime: v ? v.currentTime : null,
    duration: v && Number.isFinite(v.duration) ? v.duration : null,
    buffered,
    errors: st.errors || [],
    levels: st.levels || [],
    audioTracks: hls && hls.audioTracks ? hls.audioTracks.length : (st.audioTracks || 0),
    decodedFrames: q ? q.totalVideoFrames : 0,
    droppedFrames: q ? q.droppedVideoFrames : 0,
    levelSwitches: st.levelSwitches || [],
    hlsjsVersion: st.hlsjsVersion || null,
    fragHosts: st.fragHosts || {},
    steeringManifests: st.steeringManifests || 0,
  };
}

let context = null;
const userDataDir = mkdtempSync(join(tmpdir(), 'reel-play-hls-'));
let exitCode = 1;
try {
  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
  result.browserVersion = context.browser() ? context.browser().version() : null;
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      result.errors.push({ type: 'console', details: msg.text(), fatal: false });
    }
  });
  page.on('pageerror', (err) => {
    result.errors.push({ type: 'pageerror', details: String(err && err.message || err), fatal: false });
  });
  page.on('crash', () => fatalHarness('page crashed'));

  await page.goto(pageUrl, { waitUntil: 'load', timeout: 15_000 });
  await page.evaluate(pageMain, { url: opts.url, rate: opts.rate, stall: opts.stall, hlsConfig: opts.hlsConfig });
  let progress = null;
  if (opts.progress) {
    progress = setInterval(async () => {
      try {
        const p = await page.evaluate(() => {
          const v = document.getElementById('v');
          return [v ? v.currentTime : 0, (window.__reel && window.__reel.lastHost) || '-'];
        });
        process.stderr.write(`progress ${p[0]} ${p[1]}\n`);
      } catch { /* page closing */ }
    }, 250);
  }

  const deadline = t0 + opts.timeout * 1000;
  const remaining = Math.max(1000, deadline - Date.now());
  try {
    await page.waitForFunction(() => window.__reel && window.__reel.done, null, {
      timeout: remaining,
      polling: 100,
    });
  } catch (e) {
    if (/Timeout/i.test(String(e && e.message))) {
      result.timedOut = true;
    } else {
      throw e;
    }
  }
  if (progress) clearInterval(progress);
  const snap = await page.evaluate(pageSnapshot);
  // console/pageerror entries collected in node come after the in-page ones
  const nodeErrors = result.errors;
  Object.assign(result, snap, { errors: [...snap.errors, ...nodeErrors] });
  if (result.timedOut) {
    result.errors.push({
      type: 'harness',
      details: `timeout after ${opts.timeout}s without 'ended' (currentTime=${result.currentTime})`,
      fatal: true,
    });
  }
  const anyFatal = result.errors.some((e) => e.fatal);
  exitCode = result.ended && !anyFatal ? 0 : 1;
} catch (e) {
  fatalHarness(e && e.stack ? e.stack.split('\n')[0] : String(e));
  exitCode = 1;
} finally {
  try { if (context) await context.close(); } catch { /* ignore */ }
  server.close();
  try { rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ }
}
finish(exitCode);
