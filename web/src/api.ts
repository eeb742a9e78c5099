// The HTTP API of reel as the web app uses it: typed responses, and one
// error type that carries the server's `{"error": {"code", "message"}}`.
// Every request is same-origin, so the session cookie authenticates it.

export type VideoState = 'processing' | 'playable' | 'ready' | 'failed' | 'cancelled';

/** Who may list and play a video: anyone; anyone with its id; its owner (signed URLs). */
export type Visibility = 'public' | 'unlisted' | 'private';
export const VISIBILITIES: Visibility[] = ['public', 'unlisted', 'private'];

export interface Rendition {
  /** Its id, e.g. `h264-720p` (its folder, and its download's name). */
  id: string;
  name: string;
  /** `h264`, `av1` or `hevc`. */
  codec: string;
  width: number;
  height: number;
  average_bitrate: number;
  peak_bitrate: number;
  segments: number;
  frames: number;
}

export interface PipelineStep {
  name: string;
  done: number;
  total: number;
}

export interface VideoUrls {
  hls?: string | null;
  dash?: string | null;
  poster?: string | null;
  storyboard?: string | null;
  play_hls?: string | null;
  play_dash?: string | null;
}

export interface VideoError {
  step?: string | null;
  task?: string | null;
  message: string;
}

export interface Video {
  id: string;
  title: string;
  visibility: Visibility;
  state: VideoState;
  percent: number;
  duration_seconds: number | null;
  source_size: number | null;
  created_at: number;
  renditions: Rendition[];
  audio: boolean;
  urls: VideoUrls;
  error: VideoError | null;
  steps?: PipelineStep[];
  /** The progressive MP4s made so far (GET /v1/videos/{id} only). */
  downloads?: Download[];
}

export interface Download {
  rendition: string;
  url: string;
}

export interface Session {
  signed_in: boolean;
  key_name: string;
}

/** An HTTP answer other than 2xx, with the server's error code and message when it sent JSON. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A request body: a value sent as JSON, or a file sent as it is. */
type RequestBody = { json: unknown } | { file: Blob };

async function request<T>(method: string, path: string, body?: RequestBody): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body && 'json' in body) {
    init.body = JSON.stringify(body.json);
    init.headers = { ...init.headers, 'content-type': 'application/json' };
  } else if (body) {
    init.body = body.file;
    init.headers = { ...init.headers, 'content-type': 'application/octet-stream' };
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'cannot reach the server; check your connection and try again');
  }
  const text = await response.text();
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = `${method} ${path} answered ${response.status} ${response.statusText}`.trim();
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      if (parsed.error?.code) code = parsed.error.code;
      if (parsed.error?.message) message = parsed.error.message;
    } catch {
      // Not JSON (a proxy's HTML page, an empty 404): keep the status line.
    }
    throw new ApiError(response.status, code, message);
  }
  return (text ? JSON.parse(text) : null) as T;
}

export function listVideos(limit = 100): Promise<{ videos: Video[] }> {
  return request('GET', `/v1/videos?limit=${limit}`);
}

export function getVideo(id: string): Promise<Video> {
  return request('GET', `/v1/videos/${encodeURIComponent(id)}`);
}

export function deleteVideo(id: string): Promise<unknown> {
  return request('DELETE', `/v1/videos/${encodeURIComponent(id)}`);
}

export function setVisibility(id: string, visibility: Visibility): Promise<Video> {
  return request('PATCH', `/v1/videos/${encodeURIComponent(id)}`, { json: { visibility } });
}

/** Signed playback URLs (`/v/{id}/t/{token}/…`) that play as they are until `expires_at`. */
export interface Playback {
  token: string;
  /** Unix seconds. */
  expires_at: number;
  hls: string;
  dash: string;
  poster: string | null;
  storyboard: string | null;
}

/** Mints a playback token (the owner's session; the server checks the Origin). */
export function mintPlayback(id: string, ttlSeconds: number): Promise<Playback> {
  return request('POST', `/v1/videos/${encodeURIComponent(id)}/playback`, { json: { ttl_seconds: ttlSeconds } });
}

/** Starts the job that makes a progressive MP4 of every rendition (owner or admin, a ready video). */
export function createDownloads(id: string): Promise<{ job_id: string; downloads: Download[] }> {
  return request('POST', `/v1/videos/${encodeURIComponent(id)}/downloads`, { json: {} });
}

export interface JobSummary {
  id: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  error?: { message?: string } | null;
}

export function getJob(id: string): Promise<JobSummary> {
  return request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
}

/** Adds a caption track from an SRT or WebVTT file; the server's error names the line that is wrong. */
export function uploadCaptions(id: string, file: Blob, language: string, name: string): Promise<{ track: { id: string; name: string }; cues: number }> {
  const query = new URLSearchParams();
  if (language) query.set('language', language);
  if (name) query.set('name', name);
  return request('POST', `/v1/videos/${encodeURIComponent(id)}/captions?${query}`, { file });
}

export function getSession(): Promise<Session> {
  return request('GET', '/v1/session');
}

export function createSession(apiKey: string): Promise<{ key_name: string }> {
  return request('POST', '/v1/session', { json: { api_key: apiKey } });
}

export function deleteSession(): Promise<unknown> {
  return request('DELETE', '/v1/session');
}

/** The manifest to play: the steered one when the server offers it. */
export function hlsUrl(video: Video): string | null {
  return video.urls.play_hls || video.urls.hls || null;
}

export function dashUrl(video: Video): string | null {
  return video.urls.play_dash || video.urls.dash || null;
}

export function isProcessing(video: Video): boolean {
  return video.state === 'processing' || video.state === 'playable';
}
