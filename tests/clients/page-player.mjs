// The harness play-hls.mjs, play-dash.mjs and play-shaka.mjs share: their command line, a tiny
// page server on 127.0.0.1:0 (so the page has a real http origin and media
// servers must send CORS headers) that serves one player library, Debian's
// chromium through playwright-core, the wait for `ended` (or a fatal error, a
// stall, the timeout) and the ONE JSON object printed on stdout.
//
// A player script gives `pageMain`, which runs in the page, sets its player up
// on the <video id="v"> and calls `watchVideo` (defined in the page by this
// harness) to record `ended`, media errors and stalls on `window.__reel`; and
// `pageSnapshot`, which returns the player's own fields for the JSON. Entries
// pushed on `window.__reel.errors` with `fatal: true` fail the run. To switch
// audio mid-play, `pageMain` sets `window.__reel.player = {activeAudio(),
// switchAudio(language)}`; it shows the text track of `textLanguage` itself.
//
// The options every player script takes (besides its own --<player>-config):
//   --runs N (default 1): play N times in one browser session (a fresh page each
//     time); the JSON's `runs` lists each run's {ended, currentTime, duration,
//     elapsedMs, fatal}, its top level is the last run, and exit 0 needs all ended.
//   --block-codec PREFIX (repeatable, e.g. av01): the page's
//     MediaSource.isTypeSupported, MediaCapabilities.decodingInfo and
//     canPlayType answer "no" for any codec string starting with PREFIX.
//     Always reported: `chosenCodecs`, every codec string the player gave
//     addSourceBuffer/changeType, in order, once each.
//   --audio-language LANG --switch-at SECONDS: at SECONDS of media, switch to
//     the audio track of LANG; `audioSwitch` reports {language, before,
//     requestedAt, activeAt (media time when the player first reported LANG
//     active), playedTo, lowest (lowest currentTime after the request)}.
//   --text-language LANG: show the text track of LANG; `cueEvents` lists each
//     cue when it became active: {language, text, cueStart, currentTime}.
//   --chromium-arg ARG (repeatable): one more chromium flag after
//     chromium.mjs's CHROMIUM_ARGS, e.g.
//     --chromium-arg=--ignore-certificate-errors-spki-list=BASE64 to trust
//     one test certificate by the SHA-256 of its SubjectPublicKeyInfo.
//   --record-protocols: `responseProtocols` reports {host: {protocol: count}}
//     of the responses the page got from other origins than its own (the
//     media), over every run, as chromium's DevTools protocol reports them
//     (Network.responseReceived's `protocol`: "h2", "http/1.1"); null
//     without the flag, which adds no DevTools session. Resource Timing's
//     `nextHopProtocol` would not do: chromium gives "" for a cross-origin
//     response without Timing-Allow-Origin.
import { createServer } from 'node:http';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * `URL [--timeout S] [--rate N] [--stall-timeout S] [--<configFlag> JSON] [--progress]`;
 * exits 2 on bad usage.
 */
export function parsePlayerArgs(name, argv, configFlag) {
  const usage = (msg) => {
    if (msg) process.stderr.write(`${name}: ${msg}\n`);
    process.stderr.write(`usage: ${name}.mjs URL [--timeout SECONDS] [--rate N] [--stall-timeout SECONDS] [--${configFlag} JSON] [--progress]\n`
      + '       [--runs N] [--block-codec PREFIX]... [--audio-language LANG --switch-at SECONDS] [--text-language LANG]\n'
      + '       [--chromium-arg ARG]... [--record-protocols]\n');
    process.exit(2);
  };
  const opts = {
    url: null, timeout: 60, rate: 1, stall: 0, config: {}, progress: false,
    runs: 1, blockCodecs: [], audioLanguage: null, switchAt: null, textLanguage: null, chromiumArgs: [], recordProtocols: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const text = () => {
      const [k, v] = a.includes('=') ? a.split(/=(.*)/s) : [a, argv[++i]];
      if (v === undefined) usage(`${k} needs a value`);
      return [k, v];
    };
    const number = () => {
      const [k, v] = text();
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) usage(`${k}: not a positive number: ${v}`);
      return n;
    };
    const is = (flag) => a === flag || a.startsWith(`${flag}=`);
    if (is('--timeout')) opts.timeout = number();
    else if (is('--rate')) opts.rate = number();
    else if (is('--stall-timeout')) opts.stall = number();
    else if (a === '--progress') opts.progress = true;
    else if (a === '--record-protocols') opts.recordProtocols = true;
    else if (is('--runs')) opts.runs = Math.round(number());
    else if (is('--block-codec')) opts.blockCodecs.push(text()[1].toLowerCase());
    else if (is('--audio-language')) opts.audioLanguage = text()[1];
    else if (is('--switch-at')) opts.switchAt = number();
    else if (is('--text-language')) opts.textLanguage = text()[1];
    else if (is('--chromium-arg')) {
      const [k, v] = text();
      if (!v.startsWith('--')) usage(`${k}: not a chromium flag (--name[=value]): ${v}`);
      opts.chromiumArgs.push(v);
    }
    else if (is(`--${configFlag}`)) {
      const [k, v] = text();
      try { opts.config = JSON.parse(v); } catch { usage(`${k}: not JSON: ${v}`); }
    }
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (opts.url === null) opts.url = a;
    else usage(`unexpected argument ${a}`);
  }
  if (!opts.url) usage('missing URL');
  if (opts.rate > 16) usage('--rate must be <= 16 (chromium mutes/limits beyond that)');
  if ((opts.audioLanguage === null) !== (opts.switchAt === null)) usage('--audio-language and --switch-at go together');
  return opts;
}

// Runs in the page before any of its scripts (an init script): the codec
// blocking of --block-codec and the record of the codecs the player chose.
function installCodecWatch(prefixes) {
  const watch = (window.__reelCodecs = { chosen: [] });
  const codecsOf = (type) => {
    const match = /codecs\s*=\s*"?([^";]*)/i.exec(type || '');
    return match ? match[1].split(',').map((codec) => codec.trim()).filter(Boolean) : [];
  };
  const blocked = (type) => codecsOf(type).some((codec) => prefixes.some((prefix) => codec.toLowerCase().startsWith(prefix)));
  const record = (type) => {
    for (const codec of codecsOf(type)) if (!watch.chosen.includes(codec)) watch.chosen.push(codec);
  };
  for (const Source of [window.MediaSource, window.ManagedMediaSource].filter(Boolean)) {
    const isTypeSupported = Source.isTypeSupported.bind(Source);
    Source.isTypeSupported = (type) => !blocked(type) && isTypeSupported(type);
  }
  if (window.MediaSource) {
    const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
    MediaSource.prototype.addSourceBuffer = function (type) {
      record(type);
      return addSourceBuffer.call(this, type);
    };
  }
  if (window.SourceBuffer && SourceBuffer.prototype.changeType) {
    const changeType = SourceBuffer.prototype.changeType;
    SourceBuffer.prototype.changeType = function (type) {
      record(type);
      return changeType.call(this, type);
    };
  }
  const canPlayType = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return blocked(type) ? '' : canPlayType.call(this, type);
  };
  const capabilities = navigator.mediaCapabilities;
  if (capabilities && capabilities.decodingInfo) {
    const decodingInfo = capabilities.decodingInfo.bind(capabilities);
    capabilities.decodingInfo = (config) =>
      blocked(config && config.video && config.video.contentType) || blocked(config && config.audio && config.audio.contentType)
        ? Promise.resolve({ supported: false, smooth: false, powerEfficient: false, configuration: config })
        : decodingInfo(config);
  }
}

// Runs in the page (its source is put in the page): the player-independent
// watch of the <video> on window.__reel.
function watchVideo(video, { rate, stall, audioLanguage, switchAt, textLanguage }) {
  const st = window.__reel;
  st.cueEvents = [];
  st.audioSwitch = null;
  if (textLanguage) {
    // A player fetches text beside the first media segments (dash.js the
    // whole WebVTT sidecar); on a busy machine it can land after the first
    // cue's time, which would measure the fetch, not where a cue is shown:
    // held at the first frame until that track's cues are loaded (20 s at most).
    const loaded = () => Array.from(video.textTracks).some((t) => t.language === textLanguage && t.cues && t.cues.length > 0);
    st.textWaitMs = null;
    video.addEventListener('playing', () => {
      if (loaded()) return;
      const since = performance.now();
      st.heldForText = true;
      video.pause();
      const resume = () => {
        if (st.done) return;
        if (!loaded() && performance.now() - since < 20_000) return setTimeout(resume, 20);
        st.textWaitMs = performance.now() - since;
        st.heldForText = false;
        video.play();
      };
      resume();
    }, { once: true });
  }
  // Each cue once, when it first becomes active, with the media time then.
  const seen = new Set();
  const watchTrack = (track) => {
    track.addEventListener('cuechange', () => {
      const at = video.currentTime;
      for (const cue of track.activeCues || []) {
        const key = `${track.language}|${cue.startTime}|${cue.text}`;
        if (seen.has(key)) continue;
        seen.add(key);
        st.cueEvents.push({ language: track.language, label: track.label, text: cue.text, cueStart: cue.startTime, currentTime: at });
      }
    });
  };
  for (const track of video.textTracks) watchTrack(track);
  video.textTracks.addEventListener('addtrack', (event) => watchTrack(event.track));
  if (audioLanguage) {
    video.addEventListener('timeupdate', () => {
      const player = st.player;
      if (!player) return;
      const change = st.audioSwitch;
      if (!change) {
        if (video.currentTime < switchAt) return;
        st.audioSwitch = {
          language: audioLanguage, before: player.activeAudio(), requestedAt: video.currentTime,
          activeAt: null, playedTo: video.currentTime, lowest: video.currentTime,
        };
        player.switchAudio(audioLanguage);
        return;
      }
      change.lowest = Math.min(change.lowest, video.currentTime);
      change.playedTo = video.currentTime;
      if (change.activeAt === null && player.activeAudio() === audioLanguage) change.activeAt = video.currentTime;
    });
  }
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
      // Held for text (above) is not a stall.
      if (video.currentTime !== last || st.heldForText) {
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
  return stop;
}

function mediaSnapshot() {
  const v = document.getElementById('v');
  const st = window.__reel || {};
  const buffered = [];
  for (let i = 0; v && i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
  const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  return {
    ended: !!(st.ended || (v && v.ended)),
    currentTime: v ? v.currentTime : null,
    duration: v && Number.isFinite(v.duration) ? v.duration : null,
    buffered,
    errors: st.errors || [],
    decodedFrames: q ? q.totalVideoFrames : 0,
    droppedFrames: q ? q.droppedVideoFrames : 0,
    chosenCodecs: window.__reelCodecs ? window.__reelCodecs.chosen : [],
    cueEvents: st.cueEvents || [],
    audioSwitch: st.audioSwitch || null,
  };
}

/**
 * Plays `opts.url` in chromium and prints `result` (the caller's skeleton with
 * its own fields) completed with the common ones; sets the exit code: 0 only
 * if the <video> ended with no fatal error.
 *
 * `library`: `{ file, route }`, the player's script under node_modules and the
 * path the page loads it from. `pageMain(args)` gets `{ url, rate, stall, config,
 * audioLanguage, switchAt, textLanguage }`.
 */
export async function playInPage({ name, opts, library, pageMain, pageSnapshot, result }) {
  const t0 = Date.now();
  result = {
    url: opts.url, ended: false, currentTime: null, duration: null, buffered: [], errors: [],
    decodedFrames: 0, droppedFrames: 0, chosenCodecs: [], cueEvents: [], audioSwitch: null, ...result,
    responseProtocols: opts.recordProtocols ? {} : null,
    playbackRate: opts.rate, blockedCodecs: opts.blockCodecs, runs: [], timedOut: false, elapsedMs: 0, browserVersion: null,
  };
  let printed = false;
  const finish = (code) => {
    if (printed) return;
    printed = true;
    result.elapsedMs = Date.now() - t0;
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exitCode = code;
  };
  const fatalHarness = (msg) => result.errors.push({ type: 'harness', details: String(msg), fatal: true });

  // Hard stop in case the browser itself hangs: timeout + 30 s for launch/teardown
  // (the timeout covers every run).
  const hardStop = setTimeout(() => {
    fatalHarness(`hard timeout after ${opts.timeout + 30}s (browser hung?)`);
    result.timedOut = true;
    finish(1);
    process.exit(1);
  }, (opts.timeout + 30) * 1000);
  hardStop.unref();

  const libraryPath = join(HERE, 'node_modules', library.file);
  let libraryJs;
  try {
    libraryJs = readFileSync(libraryPath);
  } catch (e) {
    fatalHarness(`cannot read ${libraryPath}: run scripts/install-test-clients.sh (${e.message})`);
    finish(1);
    return;
  }
  const pageHtml = `<!doctype html><html><head><meta charset="utf-8"><title>reel ${name}</title>
<script src="${library.route}"></script><script>${watchVideo.toString()}</script></head>
<body><video id="v" muted playsinline width="640" height="360"></video></body></html>`;
  const server = createServer((req, res) => {
    if (req.url === library.route) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(libraryJs);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else if (req.url === '/' || req.url.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(pageHtml);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pageUrl = `http://127.0.0.1:${server.address().port}/`;

  let context = null;
  const userDataDir = mkdtempSync(join(tmpdir(), `reel-${name}-`));
  let exitCode = 1;
  try {
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...opts.chromiumArgs],
      timeout: 30_000,
    });
    result.browserVersion = context.browser() ? context.browser().version() : null;
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (msg) => {
      if (msg.type() === 'error') result.errors.push({ type: 'console', details: msg.text(), fatal: false });
    });
    page.on('pageerror', (err) => {
      result.errors.push({ type: 'pageerror', details: String(err && err.message || err), fatal: false });
    });
    page.on('crash', () => fatalHarness('page crashed'));
    if (opts.recordProtocols) {
      const pageOrigin = new URL(pageUrl).origin;
      const devtools = await context.newCDPSession(page);
      devtools.on('Network.responseReceived', ({ response }) => {
        const target = new URL(response.url);
        if (!target.protocol.startsWith('http') || target.origin === pageOrigin) return;
        const protocol = response.protocol || 'unknown';
        const byProtocol = (result.responseProtocols[target.host] = result.responseProtocols[target.host] || {});
        byProtocol[protocol] = (byProtocol[protocol] || 0) + 1;
      });
      await devtools.send('Network.enable');
    }

    await context.addInitScript({ content: `(${installCodecWatch.toString()})(${JSON.stringify(opts.blockCodecs)})` });
    const pageArgs = {
      url: opts.url, rate: opts.rate, stall: opts.stall, config: opts.config,
      audioLanguage: opts.audioLanguage, switchAt: opts.switchAt, textLanguage: opts.textLanguage,
    };
    for (let runIdx = 0; runIdx < opts.runs; runIdx++) {
      const runStart = Date.now();
      // console/pageerror entries collected in node so far belong to this run
      result.errors = [];
      result.timedOut = false;
      await page.goto(pageUrl, { waitUntil: 'load', timeout: 15_000 });
      await page.evaluate(() => {
        window.__reel = { done: false, ended: false, errors: [], lastHost: null, player: null };
      });
      await page.evaluate(pageMain, pageArgs);
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

      const remaining = Math.max(1000, t0 + opts.timeout * 1000 - Date.now());
      try {
        await page.waitForFunction(() => window.__reel && window.__reel.done, null, { timeout: remaining, polling: 100 });
      } catch (e) {
        if (!/Timeout/i.test(String(e && e.message))) throw e;
        result.timedOut = true;
      }
      if (progress) clearInterval(progress);
      const snap = { ...(await page.evaluate(mediaSnapshot)), ...(await page.evaluate(pageSnapshot)) };
      const nodeErrors = result.errors;
      Object.assign(result, snap, { errors: [...snap.errors, ...nodeErrors] });
      if (result.timedOut) {
        result.errors.push({
          type: 'harness',
          details: `timeout after ${opts.timeout}s without 'ended' (currentTime=${result.currentTime})`,
          fatal: true,
        });
      }
      const fatal = result.errors.some((e) => e.fatal);
      result.runs.push({
        ended: result.ended, currentTime: result.currentTime, duration: result.duration,
        elapsedMs: Date.now() - runStart, fatal,
      });
      if (!result.ended || fatal) break;
    }
    exitCode = result.runs.length === opts.runs && result.runs.every((run) => run.ended && !run.fatal) ? 0 : 1;
  } catch (e) {
    fatalHarness(e && e.stack ? e.stack.split('\n')[0] : String(e));
    exitCode = 1;
  } finally {
    try { if (context) await context.close(); } catch { /* ignore */ }
    server.close();
    try { rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
  finish(exitCode);
}
