// Upload: drop or pick several files; each goes to reel's tus endpoint with
// tus-js-client, with progress, rate, ETA, pause and resume. An interrupted
// upload (lost network, closed tab) continues where it stopped: tus-js-client
// keeps each upload's URL in localStorage under the file's fingerprint, and
// picking the same file again resumes it. Each upload carries the visibility
// chosen above the drop zone (public by default) as its tus metadata
// `visibility`, so a private video is private from its first moment.
import type { TargetedDragEvent, TargetedEvent } from 'preact';
import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import * as tus from 'tus-js-client';
import { listVideos, VISIBILITIES, type Visibility } from '../api';
import { formatBytes, formatEta } from '../format';
import { Link } from '../router';
import { requireSignIn, signInUrl, useSession } from '../session';
import { VISIBILITY_LABELS, VisibilityBadge } from './Library';

type PreviousUpload = Awaited<ReturnType<tus.Upload['findPreviousUploads']>>[number];

type UploadStatus = 'starting' | 'uploading' | 'paused' | 'retrying' | 'offline' | 'failed' | 'finishing' | 'done';

interface UploadItem {
  key: string;
  file: File;
  /** As sent at creation (a resumed upload keeps the one it was created with). */
  visibility: Visibility;
  upload: tus.Upload;
  status: UploadStatus;
  bytesSent: number;
  bytesTotal: number;
  /** Bytes per second, smoothed. */
  rate: number;
  lastSample: { timeMs: number; bytes: number } | null;
  /** Set when this upload continues one started before (another page load). */
  resumedFrom: number | null;
  resuming: boolean;
  retryAttempt: number;
  videoId: string | null;
  error: string | null;
  needsSignIn: boolean;
}

const TUS_ENDPOINT = new URL('/files/', window.location.origin).href;
const CHUNK_SIZE = 8 * 1024 * 1024;
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000];
const RENDER_INTERVAL_MS = 250;

const VISIBILITY_HINTS: Record<Visibility, string> = {
  public: 'In the library; anyone can watch.',
  unlisted: 'Anyone with the link can watch; listed only to you.',
  private: 'Only you can watch, through links the watch page signs.',
};

let nextItemKey = 0;

export function UploadPage() {
  const session = useSession();
  const items = useRef<UploadItem[]>([]);
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const [dragging, setDragging] = useState(false);
  const [pending, setPending] = useState<PreviousUpload[]>([]);
  const [announcement, setAnnouncement] = useState('');
  const [visibility, setVisibility] = useState<Visibility>('public');
  const inputRef = useRef<HTMLInputElement>(null);
  const renderScheduled = useRef(false);

  // Progress events arrive many times a second; render at most 4 times a second.
  const scheduleRender = () => {
    if (renderScheduled.current) return;
    renderScheduled.current = true;
    window.setTimeout(() => {
      renderScheduled.current = false;
      rerender(0);
    }, RENDER_INTERVAL_MS);
  };

  const refreshPending = async () => {
    const stored = await tus.defaultOptions.urlStorage.findAllUploads().catch(() => [] as PreviousUpload[]);
    const active = new Set(items.current.map((item) => item.upload.url));
    setPending(stored.filter((entry) => entry.uploadUrl && !active.has(entry.uploadUrl)));
  };

  useEffect(() => {
    document.title = 'Upload · reel';
    void refreshPending();
  }, []);

  useEffect(() => {
    if (session.status === 'signed-out') requireSignIn('/upload');
  }, [session.status]);

  // Leaving the page stops the uploads (they resume when the files are picked again).
  useEffect(
    () => () => {
      for (const item of items.current) {
        if (item.status !== 'done') void item.upload.abort();
      }
    },
    [],
  );

  useEffect(() => {
    const warn = (event: BeforeUnloadEvent) => {
      if (items.current.some((item) => item.status !== 'done' && item.status !== 'failed' && item.status !== 'paused')) {
        event.preventDefault();
      }
    };
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, []);

  const addFiles = (files: FileList | File[]) => {
    for (const file of Array.from(files)) {
      const already = items.current.find(
        (item) =>
          item.file.name === file.name &&
          item.file.size === file.size &&
          item.file.lastModified === file.lastModified &&
          item.status !== 'done',
      );
      if (already) continue;
      const item = createItem(file, visibility, scheduleRender, setAnnouncement, () => void refreshPending());
      items.current = [...items.current, item];
      void beginUpload(item, scheduleRender);
    }
    rerender(0);
  };

  const onInputChange = (event: TargetedEvent<HTMLInputElement>) => {
    const input = event.currentTarget;
    if (input.files && input.files.length) addFiles(input.files);
    input.value = '';
  };

  const onDrop = (event: TargetedDragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer?.files.length) addFiles(event.dataTransfer.files);
  };

  const forget = async (entry: PreviousUpload) => {
    await tus.defaultOptions.urlStorage.removeUpload(entry.urlStorageKey);
    if (entry.uploadUrl) await tus.Upload.terminate(entry.uploadUrl).catch(() => undefined);
    await refreshPending();
  };

  if (session.status !== 'signed-in') {
    return (
      <section class="page">
        <h1>Upload</h1>
        {session.status === 'unreachable' ? (
          <p class="banner banner--error" role="alert">
            Cannot reach the server: {session.message}
          </p>
        ) : (
          <p class="muted">Checking your session…</p>
        )}
      </section>
    );
  }

  return (
    <section class="page">
      <div class="page-head">
        <h1>Upload</h1>
      </div>
      <p class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      <fieldset class="visibility-choice" data-testid="visibility-choice">
        <legend>Who can watch the videos you add</legend>
        {VISIBILITIES.map((option) => (
          <label key={option} class="visibility-choice__option">
            <input
              type="radio"
              name="visibility"
              value={option}
              checked={visibility === option}
              onChange={() => setVisibility(option)}
              data-testid={`visibility-${option}`}
            />
            <span class="visibility-choice__name">{VISIBILITY_LABELS[option]}</span>
            <span class="muted">{VISIBILITY_HINTS[option]}</span>
          </label>
        ))}
      </fieldset>
      <div
        class={`dropzone ${dragging ? 'dropzone--active' : ''}`}
        onDragEnter={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragOver={(e) => {
          e.preventDefault();
          if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
        }}
        onDragLeave={(e) => {
          if (e.currentTarget === e.target) setDragging(false);
        }}
        onDrop={onDrop}
        data-testid="dropzone"
      >
        <svg class="dropzone__icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
          <path d="M12 16V4m0 0l-5 5m5-5l5 5M4 16v3a1 1 0 001 1h14a1 1 0 001-1v-3" />
        </svg>
        <p class="dropzone__title">Drag and drop video files here</p>
        <p class="muted">MP4, MOV, MKV, WebM and most other formats. Several files at once are fine.</p>
        <input
          ref={inputRef}
          id="file-input"
          class="visually-hidden"
          type="file"
          accept="video/*,audio/*,.mkv,.ts,.mxf,.flv"
          multiple
          onChange={onInputChange}
          data-testid="file-input"
        />
        <button type="button" class="button button--primary" onClick={() => inputRef.current?.click()}>
          Choose files
        </button>
      </div>

      {pending.length > 0 && (
        <div class="pending card" data-testid="pending-uploads">
          <h2>Unfinished uploads</h2>
          <p class="muted">Choose or drop the same file again and its upload continues where it stopped.</p>
          <ul class="pending__list">
            {pending.map((entry) => (
              <li key={entry.urlStorageKey}>
                <span class="pending__name">{entry.metadata.filename || 'Unnamed file'}</span>
                <span class="muted">
                  {entry.size != null ? formatBytes(entry.size) : ''} · started{' '}
                  {new Date(entry.creationTime).toLocaleString()}
                </span>
                <button
                  type="button"
                  class="button button--ghost button--small"
                  onClick={() => void forget(entry)}
                  aria-label={`Forget the unfinished upload of ${entry.metadata.filename || 'an unnamed file'}`}
                >
                  Forget
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}

      {items.current.length > 0 && (
        <ul class="upload-list" aria-label="Uploads">
          {items.current.map((item) => (
            <UploadRow key={item.key} item={item} onChange={scheduleRender} />
          ))}
        </ul>
      )}
    </section>
  );
}

function createItem(
  file: File,
  visibility: Visibility,
  onChange: () => void,
  announce: (text: string) => void,
  onStored: () => void,
): UploadItem {
  const item = { key: `upload-${nextItemKey++}`, file, visibility } as UploadItem;
  Object.assign(item, {
    status: 'starting',
    bytesSent: 0,
    bytesTotal: file.size,
    rate: 0,
    lastSample: null,
    resumedFrom: null,
    resuming: false,
    retryAttempt: 0,
    videoId: null,
    error: null,
    needsSignIn: false,
  });
  item.upload = new tus.Upload(file, {
    endpoint: TUS_ENDPOINT,
    chunkSize: CHUNK_SIZE,
    retryDelays: RETRY_DELAYS_MS,
    parallelUploads: 1,
    removeFingerprintOnSuccess: true,
    metadata: { filename: file.name, filetype: file.type || 'application/octet-stream', visibility },
    onUploadUrlAvailable: onStored,
    onProgress(bytesSent, bytesTotal) {
      if (item.status === 'paused') return;
      if (item.resuming) {
        item.resuming = false;
        item.resumedFrom = item.resumedFrom ?? bytesSent;
      }
      updateRate(item, bytesSent);
      item.bytesSent = bytesSent;
      item.bytesTotal = bytesTotal;
      item.status = bytesSent >= bytesTotal ? 'finishing' : 'uploading';
      item.retryAttempt = 0;
      item.error = null;
      onChange();
    },
    onShouldRetry(error, retryAttempt) {
      const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
      // A lost connection (status 0) and server-side trouble are worth
      // retrying, even while the browser says it is offline: the delays are
      // bounded, and an 'online' listener takes over once they run out.
      const retry = status === 0 || status >= 500 || status === 409 || status === 423;
      if (retry) {
        item.status = 'retrying';
        item.retryAttempt = retryAttempt + 1;
        item.lastSample = null;
        onChange();
      }
      return retry;
    },
    onError(error) {
      const status = error instanceof tus.DetailedError && error.originalResponse ? error.originalResponse.getStatus() : 0;
      item.lastSample = null;
      if (status === 401 || status === 403) {
        item.status = 'failed';
        item.needsSignIn = true;
        item.error = 'Your session has ended. Sign in again, then pick the file again to continue.';
      } else if (!navigator.onLine) {
        item.status = 'offline';
        item.error = null;
        window.addEventListener(
          'online',
          () => {
            if (item.status === 'offline') {
              item.status = 'starting';
              item.upload.start();
              onChange();
            }
          },
          { once: true },
        );
      } else {
        item.status = 'failed';
        item.error = describeTusError(error, status);
      }
      announce(`Upload of ${file.name} ${item.status === 'offline' ? 'waits for the network' : 'failed'}.`);
      onChange();
    },
    onSuccess({ lastResponse }) {
      item.bytesSent = item.bytesTotal;
      item.status = 'finishing';
      onChange();
      void findVideoId(item, lastResponse.getHeader('Reel-Video-Id') ?? null).then((videoId) => {
        item.videoId = videoId;
        item.status = 'done';
        announce(`Upload of ${file.name} is complete.`);
        onChange();
      });
    },
  });
  return item;
}

async function beginUpload(item: UploadItem, onChange: () => void): Promise<void> {
  try {
    const previous = await item.upload.findPreviousUploads();
    if (previous.length > 0) {
      // The newest entry is the one most likely to still exist on the server.
      const newest = [...previous].sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime))[0];
      item.upload.resumeFromPreviousUpload(newest);
      item.resuming = true;
      // The server keeps the metadata the upload was created with.
      const created = newest.metadata.visibility;
      item.visibility = (VISIBILITIES as string[]).includes(created) ? (created as Visibility) : 'public';
    }
  } catch {
    // Without localStorage the upload simply starts from zero.
  }
  item.status = 'uploading';
  item.upload.start();
  onChange();
}

function updateRate(item: UploadItem, bytesSent: number): void {
  const now = performance.now();
  const sample = item.lastSample;
  if (!sample || bytesSent < sample.bytes) {
    item.lastSample = { timeMs: now, bytes: bytesSent };
    return;
  }
  const elapsedMs = now - sample.timeMs;
  if (elapsedMs < 500) return;
  const instantRate = ((bytesSent - sample.bytes) * 1000) / elapsedMs;
  item.rate = item.rate > 0 ? 0.7 * item.rate + 0.3 * instantRate : instantRate;
  item.lastSample = { timeMs: now, bytes: bytesSent };
}

function describeTusError(error: Error, status: number): string {
  if (status === 413) return 'This file is larger than the server accepts, or your storage quota is full.';
  if (status === 0) return 'The connection to the server was lost and did not come back. Retry when you are online.';
  let serverMessage = '';
  if (error instanceof tus.DetailedError && error.originalResponse) {
    try {
      const parsed = JSON.parse(error.originalResponse.getBody()) as { error?: { message?: string } };
      serverMessage = parsed.error?.message ?? '';
    } catch {
      serverMessage = '';
    }
  }
  return serverMessage || `The server answered ${status}.`;
}

/**
 * The video the upload became: reel sends `Reel-Video-Id` on the final PATCH
 * (and on HEAD of a finished upload). Older servers do not, so fall back to
 * the newest video with this file's name and size.
 */
async function findVideoId(item: UploadItem, fromHeader: string | null): Promise<string | null> {
  if (fromHeader) return fromHeader;
  if (item.upload.url) {
    try {
      const head = await fetch(item.upload.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
      const headerValue = head.headers.get('Reel-Video-Id');
      if (headerValue) return headerValue;
    } catch {
      // Fall through to the library lookup.
    }
  }
  try {
    const { videos } = await listVideos(20);
    const match = videos.find((video) => video.title === item.file.name && video.source_size === item.file.size);
    return match ? match.id : null;
  } catch {
    return null;
  }
}

const STATUS_LABELS: Record<UploadStatus, string> = {
  starting: 'Starting',
  uploading: 'Uploading',
  paused: 'Paused',
  retrying: 'Connection lost, retrying',
  offline: 'Offline, waiting for the network',
  failed: 'Failed',
  finishing: 'Finishing',
  done: 'Uploaded',
};

function UploadRow({ item, onChange }: { item: UploadItem; onChange: () => void }) {
  const percent = item.bytesTotal > 0 ? Math.floor((item.bytesSent / item.bytesTotal) * 100) : 0;
  const active = item.status === 'uploading' || item.status === 'starting' || item.status === 'retrying';
  const canResume = item.status === 'paused' || item.status === 'failed' || item.status === 'offline';
  const nameId = `${item.key}-name`;
  const eta = item.rate > 0 ? (item.bytesTotal - item.bytesSent) / item.rate : Number.NaN;

  const pause = () => {
    item.status = 'paused';
    item.lastSample = null;
    void item.upload.abort();
    onChange();
  };
  const resume = () => {
    item.status = 'starting';
    item.error = null;
    item.lastSample = null;
    item.upload.start();
    onChange();
  };

  return (
    <li
      class={`upload-item upload-item--${item.status}`}
      aria-labelledby={nameId}
      data-testid="upload-item"
      data-status={item.status}
      data-bytes-sent={item.bytesSent}
      data-bytes-total={item.bytesTotal}
      data-resumed-from={item.resumedFrom ?? undefined}
    >
      <div class="upload-item__head">
        <span class="upload-item__title">
          <span class="upload-item__name" id={nameId}>
            {item.file.name}
          </span>
          <VisibilityBadge visibility={item.visibility} />
        </span>
        <span class={`upload-item__status upload-item__status--${item.status}`} data-testid="upload-status">
          {STATUS_LABELS[item.status]}
          {item.status === 'retrying' && item.retryAttempt > 0 ? ` (attempt ${item.retryAttempt})` : ''}
        </span>
      </div>
      <div class="progress-row">
        <div
          class="progress"
          role="progressbar"
          aria-labelledby={nameId}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent}
          aria-valuetext={`${percent} percent, ${formatBytes(item.bytesSent)} of ${formatBytes(item.bytesTotal)}`}
          data-testid="upload-progress"
        >
          <div class={`progress__bar ${item.status === 'done' ? 'progress__bar--done' : ''}`} style={{ width: `${percent}%` }} />
        </div>
        <span class="progress-row__value">{percent} %</span>
      </div>
      <div class="upload-item__foot">
        <span class="upload-item__numbers">
          {formatBytes(item.bytesSent)} of {formatBytes(item.bytesTotal)}
          {item.status === 'uploading' && item.rate > 0 && (
            <>
              {' · '}
              {formatBytes(item.rate)}/s{' · '}
              {formatEta(eta)} left
            </>
          )}
          {item.resumedFrom != null && item.resumedFrom > 0 && (
            <span data-testid="upload-resumed"> · resumed at {formatBytes(item.resumedFrom)}</span>
          )}
        </span>
        <span class="upload-item__actions">
          {active && (
            <button type="button" class="button button--small" onClick={pause} data-testid="upload-pause" aria-label={`Pause ${item.file.name}`}>
              Pause
            </button>
          )}
          {canResume && !item.needsSignIn && (
            <button type="button" class="button button--small" onClick={resume} data-testid="upload-resume" aria-label={`Resume ${item.file.name}`}>
              {item.status === 'paused' ? 'Resume' : 'Retry'}
            </button>
          )}
          {item.status === 'done' &&
            (item.videoId ? (
              <Link href={`/watch/${item.videoId}`} class="button button--primary button--small" data-testid="upload-video-link" data-video-id={item.videoId}>
                Go to the video
              </Link>
            ) : (
              <Link href="/" class="button button--small">
                Open the library
              </Link>
            ))}
        </span>
      </div>
      {item.error && (
        <p class="field-error" role="alert">
          {item.error}
          {item.needsSignIn && (
            <>
              {' '}
              <Link href={signInUrl('/upload')}>Sign in</Link>
            </>
          )}
        </p>
      )}
    </li>
  );
}
