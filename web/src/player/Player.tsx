// The player: a <video> driven by hls.js or Shaka Player (src/player/engines.ts)
// with custom controls, storyboard previews on the seek bar, a quality menu,
// audio-language and captions menus, a stats panel and keyboard shortcuts.
// Tests read three attributes on the <video>: `data-level-height` (height of
// the level playing), `data-audio-language` (the audio track playing) and
// `data-errors` (fatal player errors so far).
import type { TargetedPointerEvent } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Video } from '../api';
import { formatBitrate, formatClock } from '../format';
import { codecName, createDashEngine, createHlsEngine, type Engine, type MediaTrack, type QualityLevel } from './engines';
import { cueAt, loadStoryboard, type StoryboardCue } from './storyboard';

export type EngineKind = 'hls' | 'dash';

export interface PlayerProps {
  video: Video;
  engineKind: EngineKind;
  url: string;
  startTime: number;
  maxBufferSeconds: number | null;
  /** The <video> element, owned by the caller so that its Share button can read the position. */
  mediaRef: { current: HTMLVideoElement | null };
  statsOpen: boolean;
  onToggleStats(): void;
  /** A private video: puts the newest playback token into each media URL. */
  signUrl?: (url: string) => string;
  /** Bumped when the manifests changed (a caption track added): the engine reloads them, keeping the position. */
  manifestVersion: number;
}

interface StatsSnapshot {
  levelHeight: number | null;
  levelBitrate: number | null;
  auto: boolean;
  bandwidth: number | null;
  bufferAhead: number;
  droppedFrames: number;
  decodedFrames: number;
  pathway: string | null;
  segmentHost: string | null;
  resolution: string;
  videoCodec: string | null;
}

const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
const IDLE_HIDE_MS = 2500;

function bufferedAhead(media: HTMLVideoElement): number {
  for (let rangeIdx = 0; rangeIdx < media.buffered.length; rangeIdx++) {
    const start = media.buffered.start(rangeIdx);
    const end = media.buffered.end(rangeIdx);
    if (media.currentTime >= start - 0.1 && media.currentTime <= end) return Math.max(0, end - media.currentTime);
  }
  return 0;
}

function bufferedEnd(media: HTMLVideoElement): number {
  for (let rangeIdx = 0; rangeIdx < media.buffered.length; rangeIdx++) {
    if (media.currentTime >= media.buffered.start(rangeIdx) - 0.1 && media.currentTime <= media.buffered.end(rangeIdx)) {
      return media.buffered.end(rangeIdx);
    }
  }
  return media.currentTime;
}

export function Player(props: PlayerProps) {
  const { video, engineKind, url, maxBufferSeconds, signUrl } = props;
  const containerRef = useRef<HTMLDivElement>(null);
  const mediaRef = props.mediaRef;
  const engineRef = useRef<Engine | null>(null);
  const startTimeRef = useRef(props.startTime);
  const fatalCount = useRef(0);
  const idleTimer = useRef<number | undefined>(undefined);

  const [playing, setPlaying] = useState(false);
  const [started, setStarted] = useState(false);
  const [waiting, setWaiting] = useState(false);
  const [currentTime, setCurrentTime] = useState(props.startTime);
  const [duration, setDuration] = useState(video.duration_seconds ?? 0);
  const [loadedEnd, setLoadedEnd] = useState(0);
  const [muted, setMuted] = useState(false);
  const [volume, setVolume] = useState(1);
  const [rate, setRate] = useState(1);
  const [levels, setLevels] = useState<QualityLevel[]>([]);
  const [currentLevel, setCurrentLevel] = useState<QualityLevel | null>(null);
  const [autoLevel, setAutoLevel] = useState(true);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [fullscreen, setFullscreen] = useState(false);
  const [idle, setIdle] = useState(false);
  const [fatalError, setFatalError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [stats, setStats] = useState<StatsSnapshot | null>(null);
  const [storyboard, setStoryboard] = useState<StoryboardCue[]>([]);
  const [hover, setHover] = useState<{ fraction: number; time: number } | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const [audioTracks, setAudioTracks] = useState<MediaTrack[]>([]);
  const [textTracks, setTextTracks] = useState<MediaTrack[]>([]);

  // The engine: created for each (engine kind, URL, retry); the position
  // carries over when the user switches between HLS and DASH.
  useEffect(() => {
    const media = mediaRef.current!;
    let cancelled = false;
    setFatalError(null);
    setLevels([]);
    setCurrentLevel(null);
    setAudioTracks([]);
    setTextTracks([]);
    delete media.dataset.audioLanguage;
    const events = {
      onLevels: () => {
        if (cancelled || !engineRef.current) return;
        setLevels(engineRef.current.levels());
      },
      onLevelSwitched: () => {
        const engine = engineRef.current;
        if (cancelled || !engine) return;
        const level = engine.currentLevel();
        setCurrentLevel(level);
        setAutoLevel(engine.isAuto());
        if (level) media.dataset.levelHeight = String(level.height);
      },
      onTracks: () => {
        const engine = engineRef.current;
        if (cancelled || !engine) return;
        const audio = engine.audioTracks();
        setAudioTracks(audio);
        setTextTracks(engine.textTracks());
        const active = audio.find((track) => track.active);
        if (active) media.dataset.audioLanguage = active.language;
      },
      onFatalError: (message: string, recovered: boolean) => {
        fatalCount.current += 1;
        media.dataset.errors = String(fatalCount.current);
        if (!recovered && !cancelled) setFatalError(message);
      },
    };
    const options = { url, contentId: video.id, startTime: startTimeRef.current, maxBufferSeconds, signUrl };
    const create = engineKind === 'dash' ? createDashEngine : createHlsEngine;
    create(media, options, events)
      .then((engine) => {
        if (cancelled) {
          engine.destroy();
          return;
        }
        engineRef.current = engine;
        events.onLevels();
        events.onTracks();
        const playing = media.play();
        playing?.catch(() => setPlaying(false));
      })
      .catch((error: Error) => {
        if (cancelled) return;
        fatalCount.current += 1;
        media.dataset.errors = String(fatalCount.current);
        setFatalError(error.message);
      });
    return () => {
      cancelled = true;
      startTimeRef.current = media.currentTime || startTimeRef.current;
      engineRef.current?.destroy();
      engineRef.current = null;
    };
  }, [engineKind, url, attempt, props.manifestVersion]);

  useEffect(() => {
    const storyboardUrl = video.urls.storyboard;
    if (!storyboardUrl) return;
    loadStoryboard(signUrl ? signUrl(storyboardUrl) : storyboardUrl)
      .then(setStoryboard)
      .catch(() => setStoryboard([]));
  }, [video.urls.storyboard]);

  // Media element events → state.
  useEffect(() => {
    const media = mediaRef.current!;
    media.dataset.errors = String(fatalCount.current);
    const sync = () => {
      setPlaying(!media.paused);
      setCurrentTime(media.currentTime);
      if (Number.isFinite(media.duration) && media.duration > 0) setDuration(media.duration);
      setLoadedEnd(bufferedEnd(media));
      setMuted(media.muted);
      setVolume(media.volume);
      setRate(media.playbackRate);
    };
    const onPlaying = () => {
      setWaiting(false);
      setStarted(true);
    };
    const onWaiting = () => setWaiting(true);
    const names = ['play', 'pause', 'timeupdate', 'durationchange', 'progress', 'volumechange', 'ratechange', 'seeked', 'ended', 'loadedmetadata'];
    for (const name of names) media.addEventListener(name, sync);
    media.addEventListener('playing', onPlaying);
    media.addEventListener('waiting', onWaiting);
    return () => {
      for (const name of names) media.removeEventListener(name, sync);
      media.removeEventListener('playing', onPlaying);
      media.removeEventListener('waiting', onWaiting);
    };
  }, []);

  useEffect(() => {
    const onChange = () => setFullscreen(document.fullscreenElement === containerRef.current);
    document.addEventListener('fullscreenchange', onChange);
    return () => document.removeEventListener('fullscreenchange', onChange);
  }, []);

  // The stats panel refreshes twice a second while it is open.
  useEffect(() => {
    if (!props.statsOpen) {
      setStats(null);
      return;
    }
    const sample = () => {
      const media = mediaRef.current!;
      const engine = engineRef.current;
      const level = engine?.currentLevel() ?? null;
      const quality = media.getVideoPlaybackQuality?.();
      setStats({
        levelHeight: level?.height ?? null,
        levelBitrate: level?.bitrate ?? null,
        auto: engine?.isAuto() ?? true,
        bandwidth: engine?.bandwidthEstimate() ?? null,
        bufferAhead: bufferedAhead(media),
        droppedFrames: quality?.droppedVideoFrames ?? 0,
        decodedFrames: quality?.totalVideoFrames ?? 0,
        pathway: engine?.pathway() ?? null,
        segmentHost: engine?.lastSegmentHost() ?? null,
        resolution: media.videoWidth ? `${media.videoWidth}×${media.videoHeight}` : '–',
        videoCodec: engine?.videoCodec() ?? null,
      });
    };
    sample();
    const interval = window.setInterval(sample, 500);
    return () => window.clearInterval(interval);
  }, [props.statsOpen]);

  const togglePlay = () => {
    const media = mediaRef.current!;
    if (media.paused || media.ended) void media.play().catch(() => undefined);
    else media.pause();
  };

  const seekTo = (time: number) => {
    const media = mediaRef.current!;
    const limit = Number.isFinite(media.duration) ? media.duration : duration;
    media.currentTime = Math.max(0, Math.min(limit || 0, time));
    setCurrentTime(media.currentTime);
  };

  const toggleMute = () => {
    const media = mediaRef.current!;
    media.muted = !media.muted;
    if (!media.muted && media.volume === 0) media.volume = 0.5;
  };

  const toggleFullscreen = () => {
    const container = containerRef.current!;
    if (document.fullscreenElement) {
      void document.exitFullscreen();
    } else if (container.requestFullscreen) {
      void container.requestFullscreen().catch(() => undefined);
    } else {
      // iOS Safari only lets the <video> itself go fullscreen.
      const media = mediaRef.current as HTMLVideoElement & { webkitEnterFullscreen?: () => void };
      media.webkitEnterFullscreen?.();
    }
  };

  const selectLevel = (value: string) => {
    const engine = engineRef.current;
    if (!engine) return;
    engine.selectLevel(value === 'auto' ? null : Number(value));
    setAutoLevel(value === 'auto');
    setAnnouncement(value === 'auto' ? 'Quality: automatic' : `Quality: ${levels.find((l) => String(l.id) === value)?.height}p`);
  };

  const selectAudio = (value: string) => {
    const engine = engineRef.current;
    const track = audioTracks.find((candidate) => String(candidate.id) === value);
    if (!engine || !track) return;
    engine.selectAudio(track.id);
    setAnnouncement(`Audio: ${trackLabel(track)}`);
  };

  const selectText = (value: string) => {
    const engine = engineRef.current;
    if (!engine) return;
    const track = textTracks.find((candidate) => String(candidate.id) === value) ?? null;
    engine.selectText(track ? track.id : null);
    setAnnouncement(track ? `Captions: ${trackLabel(track)}` : 'Captions off');
  };

  const selectRate = (value: number) => {
    const media = mediaRef.current!;
    media.playbackRate = value;
    media.defaultPlaybackRate = value;
  };

  const wake = () => {
    setIdle(false);
    window.clearTimeout(idleTimer.current);
    idleTimer.current = window.setTimeout(() => setIdle(true), IDLE_HIDE_MS);
  };

  // Keyboard shortcuts, anywhere on the watch page except in form fields.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target as HTMLElement | null;
      const tag = target?.tagName;
      const isRange = tag === 'INPUT' && (target as HTMLInputElement).type === 'range';
      if ((tag === 'INPUT' && !isRange) || tag === 'TEXTAREA' || tag === 'SELECT' || target?.isContentEditable) return;
      if ((tag === 'BUTTON' || tag === 'A') && (event.key === ' ' || event.key === 'Enter')) return;
      const media = mediaRef.current!;
      const key = event.key;
      let handled = true;
      if (key === ' ' || key === 'k' || key === 'K') togglePlay();
      else if (key === 'ArrowLeft') seekTo(media.currentTime - 5);
      else if (key === 'ArrowRight') seekTo(media.currentTime + 5);
      else if (key === 'j' || key === 'J') seekTo(media.currentTime - 10);
      else if (key === 'l' || key === 'L') seekTo(media.currentTime + 10);
      else if (key === 'f' || key === 'F') toggleFullscreen();
      else if (key === 'm' || key === 'M') toggleMute();
      else if (key === 's' || key === 'S') props.onToggleStats();
      else if (/^[0-9]$/.test(key)) {
        const total = Number.isFinite(media.duration) ? media.duration : duration;
        seekTo((Number(key) / 10) * total);
      } else if (key === 'Escape' && settingsOpen) setSettingsOpen(false);
      else handled = false;
      if (handled) {
        event.preventDefault();
        wake();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  useEffect(() => () => window.clearTimeout(idleTimer.current), []);

  const onSeekHover = (event: TargetedPointerEvent<HTMLDivElement>) => {
    const rect = event.currentTarget.getBoundingClientRect();
    const fraction = Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width));
    setHover({ fraction, time: fraction * duration });
  };

  const hoverCue = hover ? cueAt(storyboard, hover.time) : null;
  const sortedLevels = [...levels].sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
  const controlsHidden = idle && playing && !settingsOpen;
  const played = duration > 0 ? (currentTime / duration) * 100 : 0;
  const loaded = duration > 0 ? (loadedEnd / duration) * 100 : 0;
  const VolumeIcon = muted || volume === 0 ? IconMuted : IconVolume;
  const activeAudio = audioTracks.find((track) => track.active);
  const activeText = textTracks.find((track) => track.active);

  return (
    <div
      ref={containerRef}
      class={`player-shell ${controlsHidden ? 'player--idle' : ''} ${fullscreen ? 'player-shell--fullscreen' : ''}`}
      onPointerMove={wake}
      onPointerDown={wake}
      onFocusIn={wake}
      data-testid="player"
    >
      <div class="player">
      <video
        ref={mediaRef}
        class="player__video"
        playsInline
        preload="auto"
        poster={video.urls.poster ?? undefined}
        onClick={togglePlay}
        onDblClick={toggleFullscreen}
        aria-label={`Video: ${video.title}`}
        data-testid="player-video"
        data-engine={engineKind}
      />

      {!started && !playing && !fatalError && (
        <button type="button" class="player__big-play" onClick={togglePlay} aria-label="Play" data-testid="big-play">
          <IconPlay />
        </button>
      )}
      {waiting && playing && !fatalError && <div class="player__spinner" role="status" aria-label="Buffering" />}

      {fatalError && (
        <div class="player__error" role="alert" data-testid="player-error">
          <p>Playback failed: {fatalError}</p>
          <button type="button" class="button button--small" onClick={() => setAttempt((n) => n + 1)}>
            Try again
          </button>
        </div>
      )}

      <div class="player__controls" data-testid="player-controls">
        <div class="seek" onPointerMove={onSeekHover} onPointerLeave={() => setHover(null)}>
          {hover && (
            <div class="seek__preview" style={{ left: `${hover.fraction * 100}%` }} aria-hidden="true">
              {hoverCue && (
                <div
                  class="seek__thumb"
                  data-testid="storyboard-thumb"
                  style={{
                    width: `${hoverCue.width}px`,
                    height: `${hoverCue.height}px`,
                    backgroundImage: `url("${signUrl ? signUrl(hoverCue.imageUrl) : hoverCue.imageUrl}")`,
                    backgroundPosition: `-${hoverCue.x}px -${hoverCue.y}px`,
                  }}
                />
              )}
              <span class="seek__time">{formatClock(hover.time)}</span>
            </div>
          )}
          <div class="seek__track" aria-hidden="true">
            <div class="seek__loaded" style={{ width: `${Math.min(100, loaded)}%` }} />
            <div class="seek__played" style={{ width: `${Math.min(100, played)}%` }} />
          </div>
          <input
            class="seek__input"
            type="range"
            min={0}
            max={duration || 0}
            step={0.1}
            value={currentTime}
            onInput={(e) => seekTo(Number((e.target as HTMLInputElement).value))}
            aria-label="Seek"
            aria-valuetext={`${formatClock(currentTime)} of ${formatClock(duration)}`}
            data-testid="seek"
          />
        </div>
        <div class="player__bar">
          <button type="button" class="icon-button" onClick={togglePlay} aria-label={playing ? 'Pause (k)' : 'Play (k)'} data-testid="play-toggle">
            {playing ? <IconPause /> : <IconPlay />}
          </button>
          <div class="volume">
            <button type="button" class="icon-button" onClick={toggleMute} aria-label={muted ? 'Unmute (m)' : 'Mute (m)'} data-testid="mute-toggle">
              <VolumeIcon />
            </button>
            <input
              class="volume__input"
              type="range"
              min={0}
              max={1}
              step={0.05}
              value={muted ? 0 : volume}
              onInput={(e) => {
                const media = mediaRef.current!;
                media.volume = Number((e.target as HTMLInputElement).value);
                media.muted = media.volume === 0;
              }}
              aria-label="Volume"
              aria-valuetext={`${Math.round((muted ? 0 : volume) * 100)} percent`}
            />
          </div>
          <span class="player__time" data-testid="time">
            <span class="visually-hidden">Time: </span>
            {formatClock(currentTime)} / {formatClock(duration)}
          </span>
          <span class="player__spacer" />
          <span class="player__level" aria-hidden="true">
            {currentLevel ? `${currentLevel.height}p` : ''}
          </span>
          <div class="menu">
            <button
              type="button"
              class="icon-button"
              aria-label="Settings: quality, audio, captions and speed"
              aria-expanded={settingsOpen}
              aria-controls="player-settings"
              onClick={() => setSettingsOpen((open) => !open)}
              data-testid="settings-toggle"
            >
              <IconGear />
            </button>
            {settingsOpen && (
              <div id="player-settings" class="menu__popover" role="group" aria-label="Playback settings">
                <label class="menu__row">
                  <span>Quality</span>
                  <select value={autoLevel ? 'auto' : String(currentLevel?.id ?? 'auto')} onChange={(e) => selectLevel((e.target as HTMLSelectElement).value)} data-testid="quality-menu">
                    <option value="auto">Auto{autoLevel && currentLevel ? ` (${currentLevel.height}p)` : ''}</option>
                    {sortedLevels.map((level) => (
                      <option key={level.id} value={String(level.id)}>
                        {level.height}p · {formatBitrate(level.bitrate)}
                      </option>
                    ))}
                  </select>
                </label>
                {audioTracks.length > 1 && (
                  <label class="menu__row">
                    <span>Audio</span>
                    <select value={String(activeAudio?.id ?? '')} onChange={(e) => selectAudio((e.target as HTMLSelectElement).value)} data-testid="audio-menu">
                      {audioTracks.map((track) => (
                        <option key={track.id} value={String(track.id)}>
                          {trackLabel(track)}
                        </option>
                      ))}
                    </select>
                  </label>
                )}
                {textTracks.length > 0 && (
                  <label class="menu__row">
                    <span>Captions</span>
                    <select value={activeText ? String(activeText.id) : 'off'} onChange={(e) => selectText((e.target as HTMLSelectElement).value)} data-testid="captions-menu">
                      <option value="off">Off</option>
                      {textTracks.map((track) => (
                        <option key={track.id} value={String(track.id)}>
                          {trackLabel(track)}
                        </option>
                      ))}
                    </select>
                  </label>
                )}
                <label class="menu__row">
                  <span>Speed</span>
                  <select value={String(rate)} onChange={(e) => selectRate(Number((e.target as HTMLSelectElement).value))} data-testid="speed-menu">
                    {!SPEEDS.includes(rate) && <option value={String(rate)}>{rate}×</option>}
                    {SPEEDS.map((speed) => (
                      <option key={speed} value={String(speed)}>
                        {speed === 1 ? 'Normal' : `${speed}×`}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
            )}
          </div>
          <button type="button" class="icon-button" onClick={toggleFullscreen} aria-label={fullscreen ? 'Exit full screen (f)' : 'Full screen (f)'} data-testid="fullscreen-toggle">
            {fullscreen ? <IconExitFullscreen /> : <IconFullscreen />}
          </button>
        </div>
      </div>
      </div>
      {props.statsOpen && stats && (
        <section class="stats" aria-label="Playback statistics" data-testid="stats-panel">
          <h2 class="stats__title">Stats</h2>
          <dl>
            <dt>Engine</dt>
            <dd>{engineKind === 'hls' ? 'hls.js (HLS)' : 'Shaka Player (DASH)'}</dd>
            <dt>Rendition</dt>
            <dd data-testid="stats-level">
              {stats.levelHeight ? `${stats.levelHeight}p · ${formatBitrate(stats.levelBitrate ?? 0)}` : '–'}
              {stats.auto ? ' (auto)' : ' (fixed)'}
            </dd>
            <dt>Codec</dt>
            <dd data-testid="stats-codec">{stats.videoCodec ? `${codecName(stats.videoCodec)} (${stats.videoCodec})` : '–'}</dd>
            <dt>Picture</dt>
            <dd>{stats.resolution}</dd>
            <dt>Bandwidth</dt>
            <dd data-testid="stats-bandwidth">{stats.bandwidth ? formatBitrate(stats.bandwidth) : '–'}</dd>
            <dt>Buffer</dt>
            <dd data-testid="stats-buffer">{stats.bufferAhead.toFixed(1)} s</dd>
            <dt>Frames</dt>
            <dd>
              {stats.droppedFrames} dropped of {stats.decodedFrames}
            </dd>
            <dt>Pathway</dt>
            <dd data-testid="stats-pathway">{stats.pathway ?? '–'}</dd>
            <dt>Segments from</dt>
            <dd>{stats.segmentHost ?? '–'}</dd>
          </dl>
        </section>
      )}

      <p class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
    </div>
  );
}

/** A track's name and language code ("Français (fr)"), or whichever it has, or "Track N". */
function trackLabel(track: MediaTrack): string {
  if (track.name && track.language && track.name !== track.language) {
    return `${track.name} (${track.language})`;
  }
  return track.name || track.language || `Track ${track.id + 1}`;
}

// Icons: inline SVG, decorative (the buttons carry the labels).
function Icon({ d }: { d: string }) {
  return (
    <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={d} />
    </svg>
  );
}
const IconPlay = () => <Icon d="M8 5.5v13l11-6.5z" />;
const IconPause = () => <Icon d="M7 5h4v14H7zM13 5h4v14h-4z" />;
const IconVolume = () => <Icon d="M4 9v6h4l5 4V5L8 9zm12.5 3a4.5 4.5 0 00-2.5-4v8a4.5 4.5 0 002.5-4zM14 3.2v2.1a7 7 0 010 13.4v2.1a9 9 0 000-17.6z" />;
const IconMuted = () => <Icon d="M4 9v6h4l5 4V5L8 9zm12.6 3l2.7-2.7-1.4-1.4-2.7 2.7-2.7-2.7-1.4 1.4 2.7 2.7-2.7 2.7 1.4 1.4 2.7-2.7 2.7 2.7 1.4-1.4z" />;
const IconGear = () => (
  <Icon d="M19.4 13a7.5 7.5 0 000-2l2.1-1.6-2-3.5-2.5 1a7.6 7.6 0 00-1.7-1L15 3.2h-4l-.4 2.7a7.6 7.6 0 00-1.7 1l-2.5-1-2 3.5L6.6 11a7.5 7.5 0 000 2l-2.1 1.6 2 3.5 2.5-1a7.6 7.6 0 001.7 1l.4 2.7h4l.4-2.7a7.6 7.6 0 001.7-1l2.5 1 2-3.5zM12 15.5a3.5 3.5 0 110-7 3.5 3.5 0 010 7z" />
);
const IconFullscreen = () => <Icon d="M4 4h6v2H6v4H4zm10 0h6v6h-2V6h-4zM4 14h2v4h4v2H4zm14 0h2v6h-6v-2h4z" />;
const IconExitFullscreen = () => <Icon d="M8 4h2v6H4V8h4zm6 0h2v4h4v2h-6zM4 14h6v6H8v-4H4zm10 0h6v2h-4v4h-2z" />;
