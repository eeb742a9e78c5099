#!/usr/bin/env node
// Play a DASH MPD to the end in headless Debian chromium with Shaka Player, and
// report what happened as ONE JSON object on stdout (as play-hls.mjs does).
//
//   node tests/clients/play-shaka.mjs URL [--timeout SECONDS] [--rate N] [--stall-timeout SECONDS]
//                                         [--shaka-config JSON] [--progress] [--runs N] [--block-codec PREFIX]
//                                         [--audio-language LANG --switch-at SECONDS] [--text-language LANG]
//                                         [--chromium-arg ARG]... [--record-protocols]
//
// The options are play-hls.mjs's (page-player.mjs describes the shared ones); --shaka-config is a JSON object given to
// `player.configure()` (e.g. '{"streaming":{"bufferingGoal":4}}').
// The JSON: ended, currentTime, duration, buffered, decodedFrames, droppedFrames,
// errors (every Shaka `error` event and a rejected load: `code`, `category`,
// `fatal` = severity CRITICAL, and for HTTP errors (code 1001 BAD_HTTP_STATUS)
// `httpStatus` and `url`), variants (Shaka's variant tracks), segHosts, shakaVersion,
// elapsedMs, browserVersion.
//
// Exit code: 0 only if the <video> fired `ended` and no error was fatal; 1 otherwise
// (including timeout); 2 on bad usage. The harness is page-player.mjs.
//
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { parsePlayerArgs, playInPage } from './page-player.mjs';

// Runs inside the page. Sets up Shaka Player and records everything on window.__reel.
function pageMain({ url, rate, stall, config, audioLanguage, switchAt, textLanguage }) {
  const st = Object.assign(window.__reel, { variants: [], segHosts: {}, shakaVersion: null });
  const video = document.getElementById('v');
  const stop = watchVideo(video, { rate, stall, audioLanguage, switchAt, textLanguage });
  if (typeof shaka === 'undefined') {
    st.errors.push({ type: 'harness', details: 'shaka-player did not load', fatal: true });
    return stop();
  }
  st.shakaVersion = shaka.Player.version;
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) {
    st.errors.push({ type: 'harness', details: 'shaka.Player.isBrowserSupported() is false (no MSE?)', fatal: true });
    return stop();
  }
  // shaka.util.Error: severity 2 is CRITICAL (the player stopped); 1001 is
  // BAD_HTTP_STATUS with data [uri, status, ...].
  const record = (e) => {
    const fatal = e.severity === 2;
    const http = e.code === 1001;
    st.errors.push({
      type: 'shaka', details: `error ${e.code} (category ${e.category})`, code: e.code, category: e.category,
      fatal, httpStatus: http ? e.data[1] : undefined, url: http ? e.data[0] : undefined,
    });
    if (fatal) stop();
  };
  const player = new shaka.Player();
  window.__shaka = player;
  st.player = {
    activeAudio: () => {
      const active = player.getAudioTracks().find((track) => track.active);
      return active ? active.language : null;
    },
    switchAudio: (language) => {
      const track = player.getAudioTracks().find((candidate) => candidate.language === language);
      if (track) player.selectAudioTrack(track);
    },
  };
  player.configure(config);
  player.addEventListener('error', (event) => record(event.detail));
  player.getNetworkingEngine().registerResponseFilter((type, response) => {
    if (type !== shaka.net.NetworkingEngine.RequestType.SEGMENT) return;
    const host = new URL(response.uri).host;
    st.segHosts[host] = (st.segHosts[host] || 0) + 1;
    st.lastHost = host;
  });
  player.attach(video)
    .then(() => player.load(url))
    .then(() => {
      st.variants = player.getVariantTracks().map((t) => ({
        height: t.height, width: t.width, bandwidth: t.bandwidth, videoCodec: t.videoCodec, audioCodec: t.audioCodec,
      }));
      if (textLanguage) {
        const text = player.getTextTracks().find((track) => track.language === textLanguage);
        if (text) player.selectTextTrack(text);
      }
      video.playbackRate = rate;
      return video.play();
    })
    .catch((e) => {
      if (e && e.code !== undefined) record({ ...e, severity: 2 });
      else st.errors.push({ type: 'playError', details: String(e), fatal: true });
      stop();
    });
}

function pageSnapshot() {
  const st = window.__reel || {};
  return { variants: st.variants || [], segHosts: st.segHosts || {}, shakaVersion: st.shakaVersion || null };
}

await playInPage({
  name: 'play-shaka',
  opts: parsePlayerArgs('play-shaka', process.argv.slice(2), 'shaka-config'),
  library: { file: 'shaka-player/dist/shaka-player.compiled.js', route: '/shaka-player.compiled.js' },
  pageMain,
  pageSnapshot,
  result: { variants: [], segHosts: {}, shakaVersion: null },
});
