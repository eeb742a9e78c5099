// The library: every video as a card with its poster, state, visibility and,
// while it is processing, live progress through the pipeline steps. Polls the
// server every 1.5 s while anything is processing, every 15 s otherwise.
// Private videos show no poster here: their media needs a signed URL, which
// only the watch page mints.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, deleteVideo, isProcessing, listVideos, type Video, type Visibility } from '../api';
import { formatBytes, formatClock, formatCreated, formatStepName } from '../format';
import { Link } from '../router';
import { requireSignIn, useSession } from '../session';

const BUSY_POLL_MS = 1500;
const IDLE_POLL_MS = 15000;

export function LibraryPage() {
  const [videos, setVideos] = useState<Video[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const session = useSession();
  const timer = useRef<number | undefined>(undefined);
  const previousStates = useRef(new Map<string, string>());

  const load = async () => {
    window.clearTimeout(timer.current);
    let busy = false;
    try {
      const answer = await listVideos();
      setVideos(answer.videos);
      setLoadError(null);
      busy = answer.videos.some(isProcessing);
      // Tell screen-reader users when a video becomes playable or fails,
      // without reading every percent change.
      const changes: string[] = [];
      for (const video of answer.videos) {
        const before = previousStates.current.get(video.id);
        if (before && before !== video.state && video.state !== 'processing') {
          changes.push(`${video.title} is ${video.state}.`);
        }
        previousStates.current.set(video.id, video.state);
      }
      if (changes.length) setAnnouncement(changes.join(' '));
    } catch (error) {
      setLoadError((error as Error).message);
    }
    if (!document.hidden) timer.current = window.setTimeout(load, busy ? BUSY_POLL_MS : IDLE_POLL_MS);
  };

  useEffect(() => {
    document.title = 'Library · reel';
    void load();
    const onVisibility = () => {
      if (!document.hidden) void load();
      else window.clearTimeout(timer.current);
    };
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      window.clearTimeout(timer.current);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, []);

  const remove = async (video: Video) => {
    try {
      await deleteVideo(video.id);
      setVideos((current) => (current ? current.filter((v) => v.id !== video.id) : current));
      setAnnouncement(`${video.title} was deleted.`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        requireSignIn('/');
        return;
      }
      setAnnouncement(`Could not delete ${video.title}: ${(error as Error).message}`);
      throw error;
    }
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1>Library</h1>
        <Link href="/upload" class="button button--primary">
          Upload videos
        </Link>
      </div>
      <p class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      {loadError && (
        <p class="banner banner--error" role="alert">
          Could not load the library: {loadError}. Retrying…
        </p>
      )}
      {videos === null && !loadError && <p class="muted">Loading…</p>}
      {videos !== null && videos.length === 0 && (
        <div class="empty">
          <h2>No videos yet</h2>
          <p>
            <Link href="/upload">Upload a video</Link> and it will show up here while it is processed.
          </p>
        </div>
      )}
      {videos !== null && videos.length > 0 && (
        <ul class="video-grid" aria-label="Videos">
          {videos.map((video) => (
            <VideoCard key={video.id} video={video} canDelete={session.status === 'signed-in'} onDelete={remove} />
          ))}
        </ul>
      )}
    </section>
  );
}

const STATE_LABELS: Record<string, string> = {
  processing: 'Processing',
  playable: 'Playable',
  ready: 'Ready',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

export function StateBadge({ state }: { state: string }) {
  return (
    <span class={`badge badge--${state}`} data-testid="video-state">
      {STATE_LABELS[state] ?? state}
    </span>
  );
}

export const VISIBILITY_LABELS: Record<Visibility, string> = {
  public: 'Public',
  unlisted: 'Unlisted',
  private: 'Private',
};

export function VisibilityBadge({ visibility }: { visibility: Visibility }) {
  return (
    <span class={`badge badge--${visibility}`} data-testid="video-visibility" data-visibility={visibility}>
      {VISIBILITY_LABELS[visibility] ?? visibility}
    </span>
  );
}

function VideoCard({
  video,
  canDelete,
  onDelete,
}: {
  video: Video;
  canDelete: boolean;
  onDelete: (video: Video) => Promise<void>;
}) {
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const deleteRef = useRef<HTMLButtonElement>(null);
  const titleId = `video-title-${video.id}`;
  const watchable = video.state === 'playable' || video.state === 'ready';
  const percent = Math.max(0, Math.min(100, Math.round(video.percent ?? 0)));

  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
  }, [confirming]);

  const confirmDelete = async () => {
    setDeleting(true);
    try {
      await onDelete(video);
    } catch {
      setDeleting(false);
      setConfirming(false);
    }
  };

  const cancelDelete = () => {
    setConfirming(false);
    deleteRef.current?.focus();
  };

  return (
    <li
      class="video-card"
      data-testid="video-card"
      data-video-id={video.id}
      data-state={video.state}
      data-visibility={video.visibility}
      aria-labelledby={titleId}
    >
      <Link href={`/watch/${video.id}`} class="video-card__thumb" tabIndex={-1} aria-hidden="true">
        {video.urls.poster && video.visibility !== 'private' ? (
          <img src={video.urls.poster} alt="" loading="lazy" />
        ) : (
          <span class="video-card__placeholder">
            {video.visibility === 'private' ? 'Private' : watchable ? '▶' : STATE_LABELS[video.state]}
          </span>
        )}
        {video.duration_seconds != null && <span class="video-card__duration">{formatClock(video.duration_seconds)}</span>}
      </Link>
      <div class="video-card__body">
        <h2 class="video-card__title" id={titleId}>
          <Link href={`/watch/${video.id}`} data-testid="video-link">
            {video.title || 'Untitled'}
          </Link>
        </h2>
        <p class="video-card__meta">
          <StateBadge state={video.state} />
          <VisibilityBadge visibility={video.visibility} />
          <span>{formatCreated(video.created_at)}</span>
          {video.source_size != null && <span>{formatBytes(video.source_size)}</span>}
          {video.renditions.length > 0 && (
            <span>{video.renditions.map((r) => `${r.height}p`).join(' · ')}</span>
          )}
        </p>
        {isProcessing(video) && (
          <div class="processing">
            <div class="progress-row">
              <div
                class="progress"
                role="progressbar"
                aria-label={`Processing ${video.title}`}
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={percent}
              >
                <div class="progress__bar" style={{ width: `${percent}%` }} />
              </div>
              <span class="progress-row__value" data-testid="video-percent">
                {percent} %
              </span>
            </div>
            {video.steps && video.steps.length > 0 && (
              <ol class="steps" aria-label="Pipeline steps">
                {video.steps.map((step) => {
                  const complete = step.total > 0 && step.done >= step.total;
                  const started = step.done > 0;
                  return (
                    <li
                      key={step.name}
                      class={`step ${complete ? 'step--done' : started ? 'step--active' : ''}`}
                      aria-label={`${formatStepName(step.name)}: ${step.done} of ${step.total} done`}
                    >
                      <span class="step__dot" aria-hidden="true" />
                      <span class="step__name">{formatStepName(step.name)}</span>
                      <span class="step__count">
                        {step.done}/{step.total}
                      </span>
                    </li>
                  );
                })}
              </ol>
            )}
          </div>
        )}
        {video.state === 'failed' && video.error && (
          <p class="video-card__error" data-testid="video-error" title={video.error.message}>
            <strong>{video.error.step ? `${formatStepName(video.error.step)} failed:` : 'Failed:'}</strong>{' '}
            {video.error.message}
          </p>
        )}
        {canDelete && (
          <div class="video-card__actions">
            {confirming ? (
              <div class="confirm" role="group" aria-label={`Delete ${video.title}?`}>
                <span>Delete for good?</span>
                <button
                  type="button"
                  ref={confirmRef}
                  class="button button--danger button--small"
                  onClick={confirmDelete}
                  disabled={deleting}
                  data-testid="confirm-delete"
                >
                  {deleting ? 'Deleting…' : 'Delete'}
                </button>
                <button type="button" class="button button--small" onClick={cancelDelete} disabled={deleting}>
                  Cancel
                </button>
              </div>
            ) : (
              <button
                type="button"
                ref={deleteRef}
                class="button button--ghost button--small"
                onClick={() => setConfirming(true)}
                aria-label={`Delete ${video.title}`}
                data-testid="delete-video"
              >
                Delete
              </button>
            )}
          </div>
        )}
      </div>
    </li>
  );
}
