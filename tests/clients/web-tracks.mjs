#!/usr/bin/env node
// The watch page's tracks in headless Debian chromium: signs in, opens a ready
// public video with two audio languages and a caption track, and in each
// engine (hls.js, then Shaka for DASH) switches the audio language with the
// Audio menu while it plays, turns captions on with the Captions menu and waits
// for a cue on screen, and reads the stats panel's codec line. Then uploads a
// broken caption file (the page must show the server's error) and a good one
// (the new track must appear in the Captions menu and show its cue), makes the
// MP4 downloads with the owner's button and downloads one through its link.
// Prints ONE JSON object on stdout.
//
//   node tests/clients/web-tracks.mjs BASE_URL API_KEY VIDEO_ID GOOD_CAPTIONS BAD_CAPTIONS DOWNLOAD_DIR
//                                     [--language LANG] [--timeout SECONDS]
//
// --language (default fr): the audio language to switch to.
// Output: {ok, engines: {hls: {...}, dash: {...}}, badUpload: {message}, goodUpload: {message, cue},
//          download: {path, size, name}, errors: [...], steps: [...], elapsedMs}
// Exit code: 0 only if every step passed; 1 otherwise; 2 on bad usage.
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

function usage(msg) {
  if (msg) process.stderr.write(`web-tracks: ${msg}\n`);
  process.stderr.write('usage: web-tracks.mjs BASE_URL API_KEY VIDEO_ID GOOD_CAPTIONS BAD_CAPTIONS DOWNLOAD_DIR [--language LANG] [--timeout SECONDS]\n');
  process.exit(2);
}

const positional = [];
let timeout = 180;
let language = 'fr';
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === '--timeout') {
    timeout = Number(argv[++i]);
    if (!Number.isFinite(timeout) || timeout <= 0) usage('--timeout: not a positive number');
  } else if (arg === '--language') {
    language = argv[++i];
    if (!language) usage('--language needs a value');
  } else if (arg === '-h' || arg === '--help') usage();
  else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
  else positional.push(arg);
}
if (positional.length !== 6) usage('expected BASE_URL API_KEY VIDEO_ID GOOD_CAPTIONS BAD_CAPTIONS DOWNLOAD_DIR');
const [baseUrl, apiKey, videoId, goodCaptions, badCaptions, downloadDir] = positional;
const base = baseUrl.replace(/\/+$/, '');

const t0 = Date.now();
const result = { ok: false, engines: {}, badUpload: null, goodUpload: null, download: null, errors: [], steps: [], elapsedMs: 0 };
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
  process.stderr.write(`web-tracks: ${name}\n`);
}
const hardStop = setTimeout(() => {
  result.errors.push({ type: 'harness', details: `hard timeout after ${timeout}s`, fatal: true });
  finish(1);
  process.exit(1);
}, timeout * 1000);
hardStop.unref();

const MEDIA = '[data-testid="player-video"]';

// Runs in the page: the text of the cues showing on the <video> now.
function shownCues() {
  const media = document.querySelector('[data-testid="player-video"]');
  const texts = [];
  for (const track of media ? media.textTracks : []) {
    if (track.mode !== 'showing' || !track.activeCues) continue;
    for (const cue of track.activeCues) texts.push(cue.text);
  }
  return texts;
}

/** Waits until the <video> plays past 0.5 s; else fails with what the page shows. */
async function waitPlaying(page) {
  try {
    await page.waitForFunction((selector) => {
      const media = document.querySelector(selector);
      return media && media.currentTime > 0.5 && !media.paused && media.readyState >= 3;
    }, MEDIA, { timeout: 30_000 });
  } catch (e) {
    const state = await page.evaluate((selector) => {
      const media = document.querySelector(selector);
      return {
        currentTime: media?.currentTime, paused: media?.paused, readyState: media?.readyState,
        errors: media?.dataset.errors, playerError: document.querySelector('[data-testid="player-error"]')?.textContent ?? null,
      };
    }, MEDIA);
    throw new Error(`the video does not play: ${JSON.stringify(state)} (${e.message.split('\n')[0]})`);
  }
}

async function openSettings(page) {
  if (!(await page.$('[data-testid="audio-menu"], [data-testid="captions-menu"], [data-testid="speed-menu"]'))) {
    await page.click('[data-testid="settings-toggle"]');
  }
}

/** Selects the option of `menu` whose label contains `text`; returns its label. */
async function selectByLabel(page, menu, text) {
  const selector = `[data-testid="${menu}"]`;
  try {
    await page.waitForFunction(
      ([selector, text]) => [...(document.querySelector(selector)?.options ?? [])].some((option) => option.textContent.includes(text)),
      [selector, text],
      { timeout: 20_000 },
    );
  } catch (e) {
    const options = await page.$$eval(`${selector} option`, (found) => found.map((option) => option.textContent));
    throw new Error(`no option with ${JSON.stringify(text)} in ${menu}: it has ${JSON.stringify(options)} (${e.message.split('\n')[0]})`);
  }
  const option = await page.$eval(selector, (select, text) => {
    const found = [...select.options].find((candidate) => candidate.textContent.includes(text));
    return { value: found.value, label: found.textContent };
  }, text);
  await page.selectOption(selector, option.value);
  return option.label;
}

/** Waits until a cue is showing and returns its text. */
async function waitForCue(page, containing) {
  const handle = await page.waitForFunction(
    ([source, containing]) => {
      const texts = new Function(`return (${source})()`)();
      return texts.find((text) => text.includes(containing)) ?? null;
    },
    [shownCues.toString(), containing],
    { timeout: 20_000, polling: 100 },
  );
  return handle.jsonValue();
}

async function checkEngine(page, kind) {
  step(`engine ${kind}`);
  const report = { audioLanguageBefore: null, audioLanguageAfter: null, switchedAt: null, lowestAfterSwitch: null, playedTo: null, sameElement: false, cue: null, codecLine: null };
  await page.click(`[data-testid="engine-${kind}"]`);
  await page.waitForSelector(`${MEDIA}[data-engine="${kind}"]`, { timeout: 10_000 });
  await waitPlaying(page);
  report.audioLanguageBefore = await page.getAttribute(MEDIA, 'data-audio-language');
  await page.evaluate((selector) => { window.__reelMedia = document.querySelector(selector); }, MEDIA);
  await openSettings(page);
  await selectByLabel(page, 'audio-menu', `(${language})`);
  report.switchedAt = await page.$eval(MEDIA, (media) => {
    // The lowest position after the switch: a restart would go back to 0.
    window.__reelLowest = media.currentTime;
    media.addEventListener('timeupdate', () => { window.__reelLowest = Math.min(window.__reelLowest, media.currentTime); });
    return media.currentTime;
  });
  // The engine reports the new track, and the same element plays on past the switch.
  await page.waitForFunction(
    ([selector, language, at]) => {
      const media = document.querySelector(selector);
      return media.dataset.audioLanguage === language && media.currentTime > at + 1 && !media.paused;
    },
    [MEDIA, language, report.switchedAt],
    { timeout: 20_000 },
  );
  report.audioLanguageAfter = await page.getAttribute(MEDIA, 'data-audio-language');
  report.playedTo = await page.$eval(MEDIA, (media) => media.currentTime);
  report.sameElement = await page.evaluate((selector) => window.__reelMedia === document.querySelector(selector), MEDIA);
  report.lowestAfterSwitch = await page.evaluate(() => window.__reelLowest);
  await selectByLabel(page, 'captions-menu', 'English');
  report.cue = await waitForCue(page, 'Cue');
  await page.click('[data-testid="stats-toggle"]');
  await page.waitForFunction(() => /\(\w+\./.test(document.querySelector('[data-testid="stats-codec"]')?.textContent ?? ''), null, { timeout: 10_000 });
  report.codecLine = (await page.textContent('[data-testid="stats-codec"]')).trim();
  await page.click('[data-testid="stats-toggle"]');
  await selectByLabel(page, 'captions-menu', 'Off');
  result.engines[kind] = report;
}

async function uploadCaptions(page, file, languageTag, name) {
  await page.setInputFiles('[data-testid="caption-file"]', file);
  await page.fill('[data-testid="caption-language"]', languageTag);
  await page.fill('[data-testid="caption-name"]', name);
  await page.click('[data-testid="caption-submit"]');
  await page.waitForFunction(
    () => {
      const text = document.querySelector('[data-testid="caption-message"]')?.textContent ?? '';
      return text && !text.startsWith('Uploading');
    },
    null,
    { timeout: 20_000 },
  );
  return {
    message: (await page.textContent('[data-testid="caption-message"]')).trim(),
    alert: (await page.getAttribute('[data-testid="caption-message"]', 'role')) === 'alert',
  };
}

const userDataDir = mkdtempSync(join(tmpdir(), 'reel-web-tracks-'));
let context = null;
try {
  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    timeout: 30_000,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') result.errors.push({ type: 'console', details: msg.text(), fatal: false });
  });
  page.on('pageerror', (err) => result.errors.push({ type: 'pageerror', details: String(err && err.message || err), fatal: false }));

  step('sign in');
  await page.goto(`${base}/signin?next=${encodeURIComponent(`/watch/${videoId}`)}`, { waitUntil: 'load' });
  await page.fill('[data-testid="api-key-input"]', apiKey);
  await page.click('[data-testid="signin-submit"]');
  await page.waitForSelector(MEDIA, { timeout: 20_000 });

  for (const kind of ['hls', 'dash']) await checkEngine(page, kind);

  step('broken caption file');
  result.badUpload = await uploadCaptions(page, badCaptions, 'de', 'Kaputt');
  step('good caption file');
  result.goodUpload = await uploadCaptions(page, goodCaptions, 'de', 'Deutsch');
  // The page reloads the manifests: the new track is in the menu and shows its cues.
  await waitPlaying(page);
  await openSettings(page);
  await selectByLabel(page, 'captions-menu', 'Deutsch');
  result.goodUpload.cue = await waitForCue(page, 'Untertitel');

  step('downloads');
  await page.click('[data-testid="create-downloads"]');
  const link = await page.waitForSelector('[data-testid="download-link"]', { timeout: 120_000 });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), link.click()]);
  const path = join(downloadDir, download.suggestedFilename());
  await download.saveAs(path);
  result.download = { path, size: statSync(path).size, name: download.suggestedFilename(), failure: await download.failure() };
  result.ok = true;
} catch (e) {
  result.errors.push({ type: 'harness', details: e && e.stack ? e.stack.split('\n').slice(0, 3).join(' ') : String(e), fatal: true });
} finally {
  try { if (context) await context.close(); } catch { /* ignore */ }
  try { rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ }
}
finish(result.ok ? 0 : 1);
