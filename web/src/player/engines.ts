// The two streaming engines behind one small interface: hls.js for HLS (the
// default, with CMCD and content steering) and Shaka Player for DASH. Both
// are loaded on demand, so the library and upload pages never download them.

export interface QualityLevel {
  /** The engine's own index of the level (hls.js level index, Shaka track id). */
  id: number;
  width: number;
  height: number;
  bitrate: number;
}

/** An audio or text track as the menus show it. */
export interface MediaTrack {
  /** The engine's own id of the track (hls.js track index, Shaka track id). */
  id: number;
  /** BCP 47 language, or '' when the manifest gives none. */
  language: string;
  /** The name the manifest gives (e.g. "Commentaire"), else ''. */
  name: string;
  active: boolean;
}

/** The human name of an RFC 6381 codec string's family: H.264, AV1, HEVC, or the string itself. */
export function codecName(codec: string): string {
  const prefix = codec.split('.')[0].toLowerCase();
  if (prefix === 'avc1' || prefix === 'avc3') return 'H.264';
  if (prefix === 'av01') return 'AV1';
  if (prefix === 'hvc1' || prefix === 'hev1') return 'HEVC';
  if (prefix === 'vp09') return 'VP9';
  return codec;
}

export interface EngineEvents {
  /** The list of levels is known or changed. */
  onLevels(): void;
  /** The level being played changed (ABR or manual). */
  onLevelSwitched(): void;
  /** A fatal error: `recovered` tells whether the engine is trying again. */
  onFatalError(message: string, recovered: boolean): void;
  /** The audio or text tracks, or which of them is active, changed. */
  onTracks(): void;
}

export interface EngineOptions {
  url: string;
  contentId: string;
  startTime: number;
  /** Seconds of media to buffer ahead, for constrained devices (the `?buffer=` option). */
  maxBufferSeconds: number | null;
  /** Rewrites every request's URL (a private video: the newest playback token). */
  signUrl?: (url: string) => string;
}

export interface Engine {
  readonly kind: 'hls' | 'dash';
  levels(): QualityLevel[];
  currentLevel(): QualityLevel | null;
  /** Whether the engine picks levels itself. */
  isAuto(): boolean;
  /** A level id, or null for automatic selection. */
  selectLevel(id: number | null): void;
  /** Estimated download bandwidth in bit/s. */
  bandwidthEstimate(): number | null;
  /** The content-steering pathway in use, else null. */
  pathway(): string | null;
  /** Host that served the last media segment. */
  lastSegmentHost(): string | null;
  /** The RFC 6381 video codec string of the level playing, e.g. `avc1.64001f`. */
  videoCodec(): string | null;
  audioTracks(): MediaTrack[];
  /** Switches the audio track while playing (no restart). */
  selectAudio(id: number): void;
  textTracks(): MediaTrack[];
  /** Shows the text track's cues; null turns captions off. */
  selectText(id: number | null): void;
  destroy(): void;
}

export async function createHlsEngine(video: HTMLVideoElement, options: EngineOptions, events: EngineEvents): Promise<Engine> {
  const { default: Hls } = await import('hls.js');
  if (!Hls.isSupported()) {
    if (video.canPlayType('application/vnd.apple.mpegurl')) return createNativeEngine(video, options);
    throw new Error('this browser cannot play HLS (no Media Source Extensions)');
  }
  const bufferConfig =
    options.maxBufferSeconds != null
      ? { maxBufferLength: options.maxBufferSeconds, maxMaxBufferLength: options.maxBufferSeconds, backBufferLength: 30 }
      : {};
  const signUrl = options.signUrl;
  const hls = new Hls({
    // hls.js opens the request itself unless xhrSetup already did.
    ...(signUrl ? { xhrSetup: (xhr: XMLHttpRequest, url: string) => xhr.open('GET', signUrl(url), true) } : {}),
    cmcd: { contentId: options.contentId },
    startPosition: options.startTime > 0 ? options.startTime : -1,
    capLevelToPlayerSize: false,
    ...bufferConfig,
  });
  let lastHost: string | null = null;
  let recoveries = 0;

  hls.on(Hls.Events.MANIFEST_PARSED, () => events.onLevels());
  hls.on(Hls.Events.LEVELS_UPDATED, () => events.onLevels());
  hls.on(Hls.Events.LEVEL_SWITCHED, () => events.onLevelSwitched());
  for (const name of [
    Hls.Events.AUDIO_TRACKS_UPDATED,
    Hls.Events.AUDIO_TRACK_SWITCHED,
    Hls.Events.SUBTITLE_TRACKS_UPDATED,
    Hls.Events.SUBTITLE_TRACK_SWITCH,
  ]) {
    hls.on(name, () => events.onTracks());
  }
  hls.on(Hls.Events.FRAG_LOADED, (_event, data) => {
    try {
      lastHost = new URL(data.frag.url).host;
    } catch {
      lastHost = null;
    }
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    const message = `${data.type}: ${data.details}`;
    // Try to recover twice (hls.js's own recipe), then give up.
    if (recoveries < 2 && data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      recoveries += 1;
      hls.recoverMediaError();
      events.onFatalError(message, true);
    } else if (recoveries < 2 && data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      recoveries += 1;
      hls.startLoad();
      events.onFatalError(message, true);
    } else {
      events.onFatalError(message, false);
    }
  });
  hls.attachMedia(video);
  hls.loadSource(options.url);

  const toLevel = (level: { width: number; height: number; bitrate: number }, id: number): QualityLevel => ({
    id,
    width: level.width,
    height: level.height,
    bitrate: level.bitrate,
  });
  return {
    kind: 'hls',
    levels: () => hls.levels.map(toLevel),
    currentLevel: () => {
      const idx = hls.currentLevel;
      return idx >= 0 && hls.levels[idx] ? toLevel(hls.levels[idx], idx) : null;
    },
    isAuto: () => hls.autoLevelEnabled,
    selectLevel: (id) => {
      hls.currentLevel = id ?? -1;
    },
    bandwidthEstimate: () => (Number.isFinite(hls.bandwidthEstimate) ? hls.bandwidthEstimate : null),
    pathway: () => hls.pathwayPriority?.[0] ?? null,
    lastSegmentHost: () => lastHost,
    videoCodec: () => {
      const level = hls.levels[hls.currentLevel];
      return level?.videoCodec ?? null;
    },
    audioTracks: () =>
      hls.audioTracks.map((track, idx) => ({ id: idx, language: track.lang ?? '', name: track.name ?? '', active: idx === hls.audioTrack })),
    selectAudio: (id) => {
      hls.audioTrack = id;
    },
    textTracks: () =>
      hls.subtitleTracks.map((track, idx) => ({ id: idx, language: track.lang ?? '', name: track.name ?? '', active: idx === hls.subtitleTrack })),
    selectText: (id) => {
      hls.subtitleDisplay = id != null;
      hls.subtitleTrack = id ?? -1;
      events.onTracks();
    },
    destroy: () => hls.destroy(),
  };
}

/** Safari on iOS has no MSE in older versions but plays HLS itself; no level control there. */
function createNativeEngine(video: HTMLVideoElement, options: EngineOptions): Engine {
  video.src = options.url;
  if (options.startTime > 0) {
    video.addEventListener('loadedmetadata', () => (video.currentTime = options.startTime), { once: true });
  }
  return {
    kind: 'hls',
    levels: () => [],
    currentLevel: () => null,
    isAuto: () => true,
    selectLevel: () => undefined,
    bandwidthEstimate: () => null,
    pathway: () => null,
    lastSegmentHost: () => null,
    videoCodec: () => null,
    audioTracks: () => [],
    selectAudio: () => undefined,
    textTracks: () => [],
    selectText: () => undefined,
    destroy: () => {
      video.removeAttribute('src');
      video.load();
    },
  };
}

// Shaka ships as a Closure-compiled bundle; these are the few members used here.
interface ShakaTrack {
  id: number;
  active: boolean;
  width: number | null;
  height: number | null;
  bandwidth: number;
  videoBandwidth: number | null;
  videoCodec: string | null;
}
/** Shaka's AudioTrack and TextTrack, the members used here. */
interface ShakaMediaTrack {
  id?: number;
  active: boolean;
  language: string;
  label: string | null;
}
interface ShakaPlayer {
  attach(video: HTMLVideoElement): Promise<void>;
  load(url: string, startTime?: number | null): Promise<void>;
  configure(config: object): boolean;
  getVariantTracks(): ShakaTrack[];
  selectVariantTrack(track: ShakaTrack, clearBuffer?: boolean): void;
  getAudioTracks(): ShakaMediaTrack[];
  selectAudioTrack(track: ShakaMediaTrack): void;
  getTextTracks(): (ShakaMediaTrack & { id: number })[];
  selectTextTrack(track: ShakaMediaTrack | null): void;
  getStats(): { estimatedBandwidth: number };
  getConfiguration(): { abr: { enabled: boolean } };
  getNetworkingEngine(): {
    registerRequestFilter(filter: (type: number, request: { uris: string[] }) => void): void;
    registerResponseFilter(filter: (type: number, response: { uri: string }) => void): void;
  } | null;
  addEventListener(name: string, listener: (event: Event & { detail?: { code?: number; severity?: number; message?: string } }) => void): void;
  destroy(): Promise<void>;
}
interface ShakaNamespace {
  Player: { new (): ShakaPlayer; isBrowserSupported(): boolean };
  polyfill: { installAll(): void };
  net: { NetworkingEngine: { RequestType: { SEGMENT: number } } };
}

export async function createDashEngine(video: HTMLVideoElement, options: EngineOptions, events: EngineEvents): Promise<Engine> {
  const module = (await import('shaka-player/dist/shaka-player.dash.js')) as unknown as { default?: ShakaNamespace } & ShakaNamespace;
  const shaka: ShakaNamespace = module.default ?? module;
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) throw new Error('this browser cannot play DASH with Shaka Player');
  const player = new shaka.Player();
  await player.attach(video);
  const streaming: Record<string, number> = {};
  if (options.maxBufferSeconds != null) streaming.bufferingGoal = options.maxBufferSeconds;
  player.configure({
    streaming,
    cmcd: { enabled: true, contentId: options.contentId, useHeaders: false },
  });
  let lastHost: string | null = null;
  const signUrl = options.signUrl;
  if (signUrl) {
    player.getNetworkingEngine()?.registerRequestFilter((_type, request) => {
      request.uris = request.uris.map(signUrl);
    });
  }
  player.getNetworkingEngine()?.registerResponseFilter((type, response) => {
    if (type !== shaka.net.NetworkingEngine.RequestType.SEGMENT) return;
    try {
      lastHost = new URL(response.uri).host;
    } catch {
      lastHost = null;
    }
  });
  player.addEventListener('trackschanged', () => events.onLevels());
  player.addEventListener('adaptation', () => events.onLevelSwitched());
  player.addEventListener('variantchanged', () => events.onLevelSwitched());
  for (const name of ['trackschanged', 'variantchanged', 'audiotrackschanged', 'textchanged']) {
    player.addEventListener(name, () => events.onTracks());
  }
  player.addEventListener('error', (event) => {
    const detail = event.detail;
    // Severity 2 is CRITICAL: Shaka stopped.
    if (detail && detail.severity === 2) events.onFatalError(`shaka error ${detail.code ?? ''}`.trim(), false);
  });
  await player.load(options.url, options.startTime > 0 ? options.startTime : null);
  events.onLevels();
  events.onLevelSwitched();

  // Shaka lists one variant per (video, audio) pair; the quality menu wants one entry per video height.
  const videoLevels = (): QualityLevel[] => {
    const byHeight = new Map<number, QualityLevel>();
    for (const track of player.getVariantTracks()) {
      if (!track.height) continue;
      const existing = byHeight.get(track.height);
      if (!existing || track.bandwidth < existing.bitrate) {
        byHeight.set(track.height, { id: track.id, width: track.width ?? 0, height: track.height, bitrate: track.bandwidth });
      }
    }
    return [...byHeight.values()].sort((a, b) => a.height - b.height);
  };
  return {
    kind: 'dash',
    levels: videoLevels,
    currentLevel: () => {
      const active = player.getVariantTracks().find((track) => track.active);
      return active && active.height
        ? { id: active.id, width: active.width ?? 0, height: active.height, bitrate: active.bandwidth }
        : null;
    },
    isAuto: () => player.getConfiguration().abr.enabled,
    selectLevel: (id) => {
      if (id == null) {
        player.configure({ abr: { enabled: true } });
        return;
      }
      const track = player.getVariantTracks().find((candidate) => candidate.id === id);
      if (!track) return;
      player.configure({ abr: { enabled: false } });
      player.selectVariantTrack(track, true);
    },
    bandwidthEstimate: () => {
      const estimate = player.getStats().estimatedBandwidth;
      return Number.isFinite(estimate) ? estimate : null;
    },
    pathway: () => null,
    lastSegmentHost: () => lastHost,
    videoCodec: () => player.getVariantTracks().find((track) => track.active)?.videoCodec ?? null,
    // Shaka's audio tracks have no id before 5.x; their index stands in.
    audioTracks: () =>
      player.getAudioTracks().map((track, idx) => ({ id: idx, language: track.language, name: track.label ?? '', active: track.active })),
    selectAudio: (id) => {
      const track = player.getAudioTracks()[id];
      if (track) player.selectAudioTrack(track);
    },
    textTracks: () =>
      player.getTextTracks().map((track) => ({ id: track.id, language: track.language, name: track.label ?? '', active: track.active })),
    selectText: (id) => {
      const track = id == null ? null : player.getTextTracks().find((candidate) => candidate.id === id);
      player.selectTextTrack(track ?? null);
      events.onTracks();
    },
    destroy: () => void player.destroy(),
  };
}
