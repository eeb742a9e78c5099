// The watch page: /watch/{id}. Plays the video (HLS with hls.js, or DASH with
// Shaka behind the switch) and shows its details. Needs no sign-in, except
// for a private video: only its owner (or an admin) sees it, and the page
// plays it through signed URLs it mints with the session (src/player/signed.ts).
// A signed-in viewer (its owner or an admin, as the server checks) can change
// the video's visibility here, make its MP4 downloads and add a caption file.
//
// URL options:
//   ?t=SECONDS      start there (the Share button writes it)
//   ?engine=dash    play the DASH manifest with Shaka Player instead of HLS
//   ?buffer=SECONDS buffer at most this much media ahead (hls.js maxBufferLength,
//                   Shaka bufferingGoal), for constrained devices and networks
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  createDownloads,
  dashUrl,
  getJob,
  getVideo,
  hlsUrl,
  isProcessing,
  setVisibility,
  uploadCaptions,
  VISIBILITIES,
  type Download,
  type Video,
  type Visibility,
} from '../api';
import { formatBitrate, formatBytes, formatClock, formatCreated } from '../format';
import { Player, type EngineKind } from '../player/Player';
import { useSignedPlayback } from '../player/signed';
import { Link, replaceSearch } from '../router';
import { requireSignIn, signInUrl, useSession } from '../session';
import { StateBadge, VISIBILITY_LABELS, VisibilityBadge } from './Library';

const VISIBILITY_HINTS: Record<Visibility, string> = {
  public: 'listed, anyone can watch',
  unlisted: 'anyone with the link',
  private: 'only you, through signed links',
};

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
  const session = useSession();
  const signed = useSignedPlayback(video);
  const [visibilityMessage, setVisibilityMessage] = useState('');
  const [visibilityBusy, setVisibilityBusy] = useState(false);
  const [manifestVersion, setManifestVersion] = useState(0);

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

  const changeVisibility = async (next: Visibility) => {
    if (!video || next === video.visibility) return;
    setVisibilityBusy(true);
    setVisibilityMessage('');
    try {
      const answer = await setVisibility(video.id, next);
      setVideo(answer);
      setVisibilityMessage(`This video is now ${VISIBILITY_LABELS[answer.visibility].toLowerCase()}.`);
    } catch (error) {
      const status = error instanceof ApiError ? error.status : 0;
      if (status === 401) {
        requireSignIn(`/watch/${id}`);
        return;
      }
      setVisibilityMessage(
        status === 403 || status === 404
          ? 'Only its owner or an admin can change who sees this video.'
          : `Could not change the visibility: ${(error as Error).message}`,
      );
    } finally {
      setVisibilityBusy(false);
    }
  };

  const refresh = async () => {
    try {
      setVideo(await getVideo(id));
    } catch {
      // The next action shows the error; the page keeps what it has.
    }
  };

  if (loadError && !video) {
    const notFound = loadError.status === 404;
    return (
      <section class="page page--narrow" data-testid="watch-unavailable">
        <h1>{notFound ? 'Video not found' : 'Could not load the video'}</h1>
        {notFound ? (
          <p>
            It may have been deleted, or it is private: only its owner can watch it.
            {session.status === 'signed-out' && (
              <>
                {' '}
                <Link href={signInUrl(`/watch/${id}`)}>Sign in</Link> if it is yours.
              </>
            )}
          </p>
        ) : (
          <p>{loadError.message}. Retrying…</p>
        )}
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

  // A private video plays from the signed URLs (with their poster and
  // storyboard); the others from the plain or steered ones.
  const isPrivate = video.visibility === 'private';
  const playback = isPrivate ? signed.playback : null;
  const sources = isPrivate
    ? { hls: playback?.hls ?? null, dash: playback?.dash ?? null }
    : { hls: hlsUrl(video), dash: dashUrl(video) };
  const shown: Video = playback
    ? { ...video, urls: { ...video.urls, poster: playback.poster, storyboard: playback.storyboard } }
    : isPrivate
      ? { ...video, urls: { ...video.urls, poster: null, storyboard: null } }
      : video;
  const url = engineKind === 'dash' ? sources.dash : sources.hls;
  const playable = video.state === 'playable' || video.state === 'ready';

  return (
    <section class="watch">
      <div class="watch__stage">
        {playable && url ? (
          <Player
            key={video.id}
            video={shown}
            signUrl={isPrivate ? signed.signUrl : undefined}
            engineKind={engineKind}
            url={url}
            startTime={startTime.current}
            maxBufferSeconds={maxBufferSeconds.current}
            mediaRef={mediaRef}
            manifestVersion={manifestVersion}
            statsOpen={statsOpen}
            onToggleStats={() => setStatsOpen((open) => !open)}
          />
        ) : (
          <div class="player player--placeholder" data-testid="player-placeholder">
            {shown.urls.poster && <img src={shown.urls.poster} alt="" />}
            <div class="player__message">
              {playable && isPrivate ? (
                signed.error ? (
                  <p role="alert" data-testid="signed-playback-error">
                    Could not get a playback URL for this private video: {signed.error.message}
                  </p>
                ) : (
                  <p>Preparing a signed playback URL…</p>
                )
              ) : isProcessing(video) ? (
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
          <VisibilityBadge visibility={video.visibility} />
        </div>
        {playback && signed.error && (
          <p class="banner banner--error" role="alert" data-testid="signed-playback-error">
            Could not renew this private video's playback URL: {signed.error.message}. Playback stops when the current one expires.
          </p>
        )}
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

        {session.status === 'signed-in' && (
          <div class="visibility-control">
            <label for="visibility-select">Who can watch</label>
            <select
              id="visibility-select"
              value={video.visibility}
              disabled={visibilityBusy}
              onChange={(event) => void changeVisibility((event.target as HTMLSelectElement).value as Visibility)}
              data-testid="visibility-select"
            >
              {VISIBILITIES.map((visibility) => (
                <option key={visibility} value={visibility}>
                  {VISIBILITY_LABELS[visibility]}: {VISIBILITY_HINTS[visibility]}
                </option>
              ))}
            </select>
            <span role="status" aria-live="polite" data-testid="visibility-message">
              {visibilityMessage}
            </span>
          </div>
        )}

        {video.state === 'ready' && (
          <Downloads
            video={video}
            canCreate={session.status === 'signed-in'}
            signedBase={playback ? playback.hls.replace(/master\.m3u8$/, '') : null}
            isPrivate={isPrivate}
            onChanged={refresh}
          />
        )}
        {session.status === 'signed-in' && video.state === 'ready' && (
          <CaptionUpload videoId={video.id} onAdded={() => setManifestVersion((version) => version + 1)} />
        )}

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

/** A message for an owner-only action the server refused. */
function actionError(error: unknown, what: string): string {
  const status = error instanceof ApiError ? error.status : 0;
  if (status === 403 || status === 404) return `Only its owner or an admin can ${what}.`;
  return (error as Error).message;
}

/** Links to the video's MP4 downloads; for its owner, a button that makes them. */
function Downloads({ video, canCreate, signedBase, isPrivate, onChanged }: {
  video: Video;
  canCreate: boolean;
  /** A private video: the signed URL prefix its files are fetched under. */
  signedBase: string | null;
  isPrivate: boolean;
  onChanged(): Promise<void>;
}) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('');
  const downloads = video.downloads ?? [];
  const href = (download: Download) => (isPrivate ? (signedBase ? `${signedBase}download/${download.rendition}.mp4` : null) : download.url);
  const label = (download: Download) => {
    const rendition = video.renditions.find((candidate) => candidate.id === download.rendition);
    return rendition ? `${rendition.name} (${rendition.width}×${rendition.height})` : download.rendition;
  };

  const create = async () => {
    setBusy(true);
    setMessage('Making the MP4 files…');
    try {
      const started = await createDownloads(video.id);
      const deadline = Date.now() + 10 * 60 * 1000;
      for (;;) {
        const job = await getJob(started.job_id);
        if (job.state === 'succeeded') break;
        if (job.state === 'failed' || job.state === 'cancelled') throw new Error(job.error?.message ?? `the download job ${job.state}`);
        if (Date.now() > deadline) throw new Error('the MP4 files are still being made; reload the page later');
        await new Promise((resolve) => window.setTimeout(resolve, 1000));
      }
      await onChanged();
      setMessage('');
    } catch (error) {
      setMessage(`Could not make the downloads: ${actionError(error, 'make downloads')}`);
    } finally {
      setBusy(false);
    }
  };

  if (downloads.length === 0 && !canCreate) return null;
  return (
    <section class="details-block" aria-labelledby="downloads-title" data-testid="downloads">
      <h2 id="downloads-title" class="section-title">
        Download
      </h2>
      {downloads.length > 0 ? (
        <ul class="downloads">
          {downloads.map((download) => {
            const link = href(download);
            return (
              <li key={download.rendition}>
                {link ? (
                  <a href={link} download data-testid="download-link" data-rendition={download.rendition}>
                    MP4 {label(download)}
                  </a>
                ) : (
                  <span class="muted">MP4 {label(download)} (preparing a signed link…)</span>
                )}
              </li>
            );
          })}
        </ul>
      ) : (
        <p class="muted">No MP4 downloads yet.</p>
      )}
      {canCreate && downloads.length < video.renditions.length && (
        <button type="button" class="button button--small" disabled={busy} onClick={() => void create()} data-testid="create-downloads">
          {downloads.length === 0 ? 'Make MP4 downloads' : 'Make the missing MP4 downloads'}
        </button>
      )}
      <p role="status" aria-live="polite" data-testid="downloads-message">
        {message}
      </p>
    </section>
  );
}

/** The owner's upload of a caption file (SubRip or WebVTT) as a new text track. */
function CaptionUpload({ videoId, onAdded }: { videoId: string; onAdded(): void }) {
  const [file, setFile] = useState<File | null>(null);
  const [language, setLanguage] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('');
  const [failed, setFailed] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!file) {
      setFailed(true);
      setMessage('Choose an SRT or WebVTT file first.');
      return;
    }
    setBusy(true);
    setFailed(false);
    setMessage('Uploading the captions…');
    try {
      const added = await uploadCaptions(videoId, file, language.trim(), name.trim());
      setMessage(`Added "${added.track.name}" (${added.cues} cues); it is in the Captions menu.`);
      onAdded();
    } catch (error) {
      setFailed(true);
      setMessage(actionError(error, 'add captions'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="details-block caption-upload" onSubmit={(event) => void submit(event)} data-testid="caption-upload">
      <h2 class="section-title">Add captions</h2>
      <label class="field-label" for="caption-file">
        Caption file (SRT or WebVTT)
      </label>
      <input
        id="caption-file"
        type="file"
        accept=".srt,.vtt,text/vtt,application/x-subrip"
        onChange={(event) => setFile((event.target as HTMLInputElement).files?.[0] ?? null)}
        data-testid="caption-file"
      />
      <label class="field-label" for="caption-language">
        Language (BCP 47, e.g. en or pt-BR)
      </label>
      <input id="caption-language" class="text-input" value={language} onInput={(event) => setLanguage((event.target as HTMLInputElement).value)} data-testid="caption-language" />
      <label class="field-label" for="caption-name">
        Name shown in the menu
      </label>
      <input id="caption-name" class="text-input" value={name} onInput={(event) => setName((event.target as HTMLInputElement).value)} data-testid="caption-name" />
      <button type="submit" class="button button--small" disabled={busy} data-testid="caption-submit">
        Upload captions
      </button>
      <p class={failed ? 'field-error' : 'muted'} role={failed ? 'alert' : 'status'} data-testid="caption-message">
        {message}
      </p>
    </form>
  );
}
