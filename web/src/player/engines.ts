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

export interface EngineEvents {
  /** The list of levels is known or changed. */
  onLevels(): void;
  /** The level being played changed (ABR or manual). */
  onLevelSwitched(): void;
  /** A fatal error: `recovered` tells whether the engine is trying again. */
  onFatalError(message: string, recovered: boolean): void;
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
}
interface ShakaPlayer {
  attach(video: HTMLVideoElement): Promise<void>;
  load(url: string, startTime?: number | null): Promise<void>;
  configure(config: object): boolean;
  getVariantTracks(): ShakaTrack[];
  selectVariantTrack(track: ShakaTrack, clearBuffer?: boolean): void;
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
    destroy: () => void player.destroy(),
  };
}
