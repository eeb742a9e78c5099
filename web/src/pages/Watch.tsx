// The watch page: /watch/{id}. Plays the video (HLS with hls.js, or DASH with
// Shaka behind the switch) and shows its details. Needs no sign-in.
//
// URL options:
//   ?t=SECONDS      start there (the Share button writes it)
//   ?engine=dash    play the DASH manifest with Shaka Player instead of HLS
//   ?buffer=SECONDS buffer at most this much media ahead (hls.js maxBufferLength,
//                   Shaka bufferingGoal), for constrained devices and networks
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, dashUrl, getVideo, hlsUrl, isProcessing, type Video } from '../api';
import { formatBitrate, formatBytes, formatClock, formatCreated } from '../format';
import { Player, type EngineKind } from '../player/Player';
import { Link, replaceSearch } from '../router';
import { StateBadge } from './Library';

function positiveNumber(text: string | null): number | null {
  if (text == null) return null;
  const value = Number(text);
  return Number.isFinite(value) && value > 0 ? value : null;
}

export function WatchPage({ id, search }: { id: string; search: URLSearchParams }) {
  const [video, setVideo] = useState<Video | null>(null);
  const [loadError, setLoadError] = useState<{ status: number; message: string } | null>(null);
  const [engineKind, setEngineKind] = useState<EngineKind>(search.get('engine') === 'dash' ? 'dash' : 'hls');
  const [statsOpen, setStatsOpen] = useState(false);
  const [shareMessage, setShareMessage] = useState('');
  const startTime = useRef(positiveNumber(search.get('t')) ?? 0);
  const maxBufferSeconds = useRef(positiveNumber(search.get('buffer')));
  const mediaRef = useRef<HTMLVideoElement | null>(null);

  useEffect(() => {
    let timer: number | undefined;
    let cancelled = false;
    const load = async () => {
      try {
        const answer = await getVideo(id);
        if (cancelled) return;
        setVideo(answer);
        setLoadError(null);
        document.title = `${answer.title || 'Untitled'} · reel`;
        // Keep polling until the video can be played (and while its ladder grows).
        if (isProcessing(answer)) timer = window.setTimeout(load, answer.state === 'processing' ? 1500 : 5000);
      } catch (error) {
        if (cancelled) return;
        const status = error instanceof ApiError ? error.status : 0;
        setLoadError({ status, message: (error as Error).message });
        document.title = 'Video not found · reel';
        if (status !== 404) timer = window.setTimeout(load, 3000);
      }
    };
    void load();
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [id]);

  const switchEngine = (kind: EngineKind) => {
    setEngineKind(kind);
    const next = new URLSearchParams(window.location.search);
    if (kind === 'dash') next.set('engine', 'dash');
    else next.delete('engine');
    replaceSearch(next);
  };

  const share = async (currentTime: number) => {
    const link = new URL(`/watch/${encodeURIComponent(id)}`, window.location.origin);
    if (currentTime >= 1) link.searchParams.set('t', String(Math.floor(currentTime)));
    const text = link.href;
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch {
      // No clipboard API (an insecure origin): fall back to a selected textarea.
      const area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.style.position = 'fixed';
      area.style.opacity = '0';
      document.body.appendChild(area);
      area.select();
      copied = document.execCommand('copy');
      area.remove();
    }
    setShareMessage(copied ? `Link copied: ${text}` : `Copy this link: ${text}`);
    window.setTimeout(() => setShareMessage(''), 6000);
  };

  if (loadError && !video) {
    return (
      <section class="page page--narrow">
        <h1>{loadError.status === 404 ? 'Video not found' : 'Could not load the video'}</h1>
        <p>{loadError.status === 404 ? 'It may have been deleted.' : `${loadError.message}. Retrying…`}</p>
        <p>
          <Link href="/">Back to the library</Link>
        </p>
      </section>
    );
  }
  if (!video) {
    return (
      <section class="page">
        <p class="muted">Loading…</p>
      </section>
    );
  }

  const url = engineKind === 'dash' ? dashUrl(video) : hlsUrl(video);
  const playable = video.state === 'playable' || video.state === 'ready';

  return (
    <section class="watch">
      <div class="watch__stage">
        {playable && url ? (
          <Player
            key={video.id}
            video={video}
            engineKind={engineKind}
            url={url}
            startTime={startTime.current}
            maxBufferSeconds={maxBufferSeconds.current}
            mediaRef={mediaRef}
            statsOpen={statsOpen}
            onToggleStats={() => setStatsOpen((open) => !open)}
          />
        ) : (
          <div class="player player--placeholder" data-testid="player-placeholder">
            {video.urls.poster && <img src={video.urls.poster} alt="" />}
            <div class="player__message">
              {isProcessing(video) ? (
                <>
                  <p>Processing… {Math.round(video.percent)} %</p>
                  <p class="muted-light">This page starts playing as soon as the first rendition is ready.</p>
                </>
              ) : video.state === 'failed' ? (
                <p>
                  Processing failed{video.error?.step ? ` at ${video.error.step}` : ''}: {video.error?.message ?? 'unknown error'}
                </p>
              ) : (
                <p>This video was cancelled and cannot be played.</p>
              )}
            </div>
          </div>
        )}
      </div>

      <div class="watch__details">
        <div class="watch__title-row">
          <h1 class="watch__title">{video.title || 'Untitled'}</h1>
          <StateBadge state={video.state} />
        </div>
        <p class="watch__meta">
          {video.duration_seconds != null && <span>{formatClock(video.duration_seconds)}</span>}
          <span>Uploaded {formatCreated(video.created_at)}</span>
          {video.source_size != null && <span>{formatBytes(video.source_size)} source</span>}
          {video.state === 'playable' && <span>{Math.round(video.percent)} % processed; higher qualities are on their way</span>}
        </p>

        {playable && (
          <div class="toolbar" role="toolbar" aria-label="Player options">
            <div class="segmented" role="group" aria-label="Streaming format">
              <button type="button" aria-pressed={engineKind === 'hls'} onClick={() => switchEngine('hls')} disabled={!hlsUrl(video)} data-testid="engine-hls">
                HLS
              </button>
              <button type="button" aria-pressed={engineKind === 'dash'} onClick={() => switchEngine('dash')} disabled={!dashUrl(video)} data-testid="engine-dash">
                DASH
              </button>
            </div>
            <button type="button" class="button button--small" aria-pressed={statsOpen} onClick={() => setStatsOpen((open) => !open)} data-testid="stats-toggle">
              Stats
            </button>
            <button type="button" class="button button--small" onClick={() => void share(mediaRef.current?.currentTime ?? 0)} data-testid="share">
              Share
            </button>
          </div>
        )}
        <p class="share-message" role="status" aria-live="polite" data-testid="share-message">
          {shareMessage}
        </p>

        {video.renditions.length > 0 && (
          <details class="details-block">
            <summary>Renditions</summary>
            <table class="renditions">
              <caption class="visually-hidden">Renditions of this video</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Size</th>
                  <th scope="col">Average</th>
                  <th scope="col">Peak</th>
                </tr>
              </thead>
              <tbody>
                {video.renditions.map((rendition) => (
                  <tr key={rendition.name}>
                    <td>{rendition.name}</td>
                    <td>
                      {rendition.width}×{rendition.height}
                    </td>
                    <td>{formatBitrate(rendition.average_bitrate)}</td>
                    <td>{formatBitrate(rendition.peak_bitrate)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        )}
        <details class="details-block">
          <summary>Keyboard shortcuts</summary>
          <dl class="shortcuts">
            <dt>
              <kbd>Space</kbd> or <kbd>k</kbd>
            </dt>
            <dd>Play or pause</dd>
            <dt>
              <kbd>←</kbd> <kbd>→</kbd>
            </dt>
            <dd>Back or forward 5 seconds</dd>
            <dt>
              <kbd>j</kbd> <kbd>l</kbd>
            </dt>
            <dd>Back or forward 10 seconds</dd>
            <dt>
              <kbd>0</kbd>–<kbd>9</kbd>
            </dt>
            <dd>Jump to 0–90 %</dd>
            <dt>
              <kbd>f</kbd>
            </dt>
            <dd>Full screen</dd>
            <dt>
              <kbd>m</kbd>
            </dt>
            <dd>Mute</dd>
            <dt>
              <kbd>s</kbd>
            </dt>
            <dd>Stats</dd>
          </dl>
        </details>
      </div>
    </section>
  );
}
