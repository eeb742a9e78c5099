#!/usr/bin/env node
// Play an HLS stream to the end in headless Debian chromium with hls.js, and report
// what happened as ONE JSON object on stdout.
//
//   node tests/clients/play-hls.mjs URL [--timeout SECONDS] [--rate N] [--stall-timeout SECONDS]
//                                       [--hls-config JSON] [--progress] [--runs N] [--block-codec PREFIX]
//                                       [--audio-language LANG --switch-at SECONDS] [--text-language LANG]
//                                       [--chromium-arg ARG]... [--record-protocols]
//
// --timeout (default 60): overall wall-clock limit for reaching `ended`.
// --rate (default 1, max 16): playbackRate; 8 finishes a 10 s clip in ~2.5 s.
// --stall-timeout (default off): give up early (fatal) when currentTime has not
//   advanced for this many wall-clock seconds (startup counts too).
// --hls-config: a JSON object merged into the hls.js config (e.g. '{"maxBufferLength":4}').
// --progress: print `progress <currentTime> <host of the last fragment>` lines on stderr
//   every 250 ms, so a test can act mid-stream (e.g. stop an edge).
// The JSON also counts fragments per host (`fragHosts`) and steering manifests loaded.
// --runs, --block-codec, --audio-language/--switch-at, --text-language,
// --chromium-arg and --record-protocols are page-player.mjs's (described
// there), as are chosenCodecs, audioSwitch, cueEvents and responseProtocols.
//
// Exit code: 0 only if the <video> fired `ended` and hls.js raised no fatal error;
// 1 otherwise (including timeout); 2 on bad usage.
// Diagnostics (not JSON) go to stderr only. The harness is page-player.mjs.
//
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { parsePlayerArgs, playInPage } from './page-player.mjs';

// Runs inside the page. Sets up hls.js and records everything on window.__reel.
function pageMain({ url, rate, stall, config, audioLanguage, switchAt, textLanguage }) {
  const st = Object.assign(window.__reel, {
    levels: [], audioTracks: 0, levelSwitches: [], hlsjsVersion: null, fragHosts: {}, steeringManifests: 0,
  });
  const video = document.getElementById('v');
  const stop = watchVideo(video, { rate, stall, audioLanguage, switchAt, textLanguage });
  if (typeof Hls === 'undefined') {
    st.errors.push({ type: 'harness', details: 'hls.js did not load', fatal: true });
    return stop();
  }
  st.hlsjsVersion = Hls.version;
  if (!Hls.isSupported()) {
    st.errors.push({ type: 'harness', details: 'Hls.isSupported() is false (no MSE?)', fatal: true });
    return stop();
  }
  // hls.js picks the subtitle track itself (after SUBTITLE_TRACKS_UPDATED it
  // resets a choice made there): the preference is how to ask for one.
  const text = textLanguage ? { subtitlePreference: { lang: textLanguage }, subtitleDisplay: true } : {};
  const hls = new Hls(Object.assign({ debug: false, enableWorker: true, startLevel: -1 }, text, config));
  hls.on(Hls.Events.FRAG_LOADED, (_ev, d) => {
    const host = new URL(d.frag.url).host;
    st.fragHosts[host] = (st.fragHosts[host] || 0) + 1;
    st.lastHost = host;
  });
  if (Hls.Events.STEERING_MANIFEST_LOADED) {
    hls.on(Hls.Events.STEERING_MANIFEST_LOADED, () => { st.steeringManifests += 1; });
  }
  window.__hls = hls;
  st.player = {
    activeAudio: () => (hls.audioTracks[hls.audioTrack] ? hls.audioTracks[hls.audioTrack].lang : null),
    switchAudio: (language) => {
      const idx = hls.audioTracks.findIndex((track) => track.lang === language);
      if (idx >= 0) hls.audioTrack = idx;
    },
  };

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
  const st = window.__reel || {};
  const hls = window.__hls;
  return {
    levels: st.levels || [],
    audioTracks: hls && hls.audioTracks ? hls.audioTracks.length : (st.audioTracks || 0),
    levelSwitches: st.levelSwitches || [],
    hlsjsVersion: st.hlsjsVersion || null,
    fragHosts: st.fragHosts || {},
    steeringManifests: st.steeringManifests || 0,
    subtitleTrack: hls ? hls.subtitleTrack : -1,
    textTracks: [...document.getElementById('v').textTracks].map((t) => ({ kind: t.kind, language: t.language, mode: t.mode, cues: t.cues ? t.cues.length : null })),
  };
}

await playInPage({
  name: 'play-hls',
  opts: parsePlayerArgs('play-hls', process.argv.slice(2), 'hls-config'),
  library: { file: 'hls.js/dist/hls.min.js', route: '/hls.min.js' },
  pageMain,
  pageSnapshot,
  result: {
    levels: [], audioTracks: 0, levelSwitches: [], fragHosts: {}, steeringManifests: 0, hlsjsVersion: null,
  },
});
