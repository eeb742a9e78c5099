#!/usr/bin/env node
// Play a DASH MPD to the end in headless Debian chromium with dash.js, and
// report what happened as ONE JSON object on stdout (as play-hls.mjs does).
//
//   node tests/clients/play-dash.mjs URL [--timeout SECONDS] [--rate N] [--stall-timeout SECONDS]
//                                        [--dashjs-config JSON] [--progress] [--runs N] [--block-codec PREFIX]
//                                        [--audio-language LANG --switch-at SECONDS] [--text-language LANG]
//                                        [--chromium-arg ARG]... [--record-protocols]
//
// The options are play-hls.mjs's (page-player.mjs describes the shared ones);
// --dashjs-config is a JSON object given to `player.updateSettings()` (e.g.
// '{"streaming":{"buffer":{"bufferTimeDefault":4}}}').
// The JSON: the common fields (ended, currentTime, duration, errors, runs,
// chosenCodecs, audioSwitch, cueEvents, ...), and `representations` (the video
// and audio representations dash.js lists: id, bandwidth, codecs, width,
// height, lang), segHosts, dashjsVersion.
//
// Exit code: 0 only if the <video> fired `ended` (every run) and dash.js raised
// no error; 1 otherwise (including timeout); 2 on bad usage.
//
// Env: REEL_CHROMIUM overrides the browser path (default /usr/bin/chromium).
import { parsePlayerArgs, playInPage } from './page-player.mjs';

// Runs inside the page. Sets up dash.js and records everything on window.__reel.
function pageMain({ url, rate, stall, config, audioLanguage, switchAt, textLanguage }) {
  const st = Object.assign(window.__reel, { representations: [], segHosts: {}, dashjsVersion: null });
  const video = document.getElementById('v');
  const stop = watchVideo(video, { rate, stall, audioLanguage, switchAt, textLanguage });
  if (typeof dashjs === 'undefined') {
    st.errors.push({ type: 'harness', details: 'dash.js did not load', fatal: true });
    return stop();
  }
  const player = dashjs.MediaPlayer().create();
  window.__dashjs = player;
  st.dashjsVersion = player.getVersion();
  const events = dashjs.MediaPlayer.events;
  // dash.js's ERROR event is its fatal one (download, manifest, MSE errors).
  player.on(events.ERROR, (event) => {
    const error = event.error || {};
    st.errors.push({ type: 'dashjs', details: `error ${error.code}: ${error.message}`, code: error.code, fatal: true });
    stop();
  });
  player.on(events.PLAYBACK_ERROR, (event) => {
    st.errors.push({ type: 'dashjs', details: `playback error: ${String(event.error)}`, fatal: true });
    stop();
  });
  player.on(events.FRAGMENT_LOADING_COMPLETED, (event) => {
    const request = event.request || {};
    if (request.type !== 'MediaSegment' || !request.url) return;
    const host = new URL(request.url).host;
    st.segHosts[host] = (st.segHosts[host] || 0) + 1;
    st.lastHost = host;
  });
  player.on(events.STREAM_INITIALIZED, () => {
    for (const type of ['video', 'audio']) {
      for (const track of player.getTracksFor(type)) {
        for (const representation of track.bitrateList || track.representations || []) {
          st.representations.push({
            type, id: representation.id, bandwidth: representation.bandwidth, codecs: track.codec || representation.codecs || null,
            width: representation.width || null, height: representation.height || null, lang: track.lang || null,
          });
        }
      }
    }
    video.playbackRate = rate;
  });
  st.player = {
    activeAudio: () => {
      const track = player.getCurrentTrackFor('audio');
      return track ? track.lang : null;
    },
    switchAudio: (language) => {
      const track = player.getTracksFor('audio').find((candidate) => candidate.lang === language);
      if (track) player.setCurrentTrack(track);
    },
  };
  player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING }, streaming: { text: { defaultEnabled: !!textLanguage } } });
  player.updateSettings(config);
  player.initialize(video, url, true);
  // Read when the stream starts, so set right after initialize (before it dash.js refuses).
  if (textLanguage) {
    player.setInitialMediaSettingsFor('text', { lang: textLanguage });
  }
}

function pageSnapshot() {
  const st = window.__reel || {};
  return { representations: st.representations || [], segHosts: st.segHosts || {}, dashjsVersion: st.dashjsVersion || null };
}

await playInPage({
  name: 'play-dash',
  opts: parsePlayerArgs('play-dash', process.argv.slice(2), 'dashjs-config'),
  library: { file: 'dashjs/dist/modern/umd/dash.all.min.js', route: '/dash.all.min.js' },
  pageMain,
  pageSnapshot,
  result: { representations: [], segHosts: {}, dashjsVersion: null },
});
