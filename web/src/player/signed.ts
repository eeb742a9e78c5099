// Signed playback of a private video on the watch page: the page mints a
// token with the owner's session (`POST /v1/videos/{id}/playback`) and plays
// the URLs it returns (`/v/{id}/t/{token}/…`, whose relative URIs inherit the
// token). Before the token expires it mints the next one; the engines keep
// playing the first URLs and put the newest token into every request they
// make (`signUrl`), so a renewal never restarts playback.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, mintPlayback, type Playback, type Video } from '../api';

/** The lifetime asked for each token (the server's default). */
const TOKEN_TTL_SECONDS = 3600;
/** Renew this long before the expiry (and 1 s more), or a fifth of the lifetime for shorter tokens. */
const RENEW_BEFORE_MS = 60_000;
const RETRY_MS = 5_000;

export interface SignedPlayback {
  /** The first URLs minted for this page; null until then (or when not private). */
  playback: Playback | null;
  /** Why minting failed (the last attempt), if it did. */
  error: { status: number; message: string } | null;
  /** Puts the newest token into a URL of this video's signed media. */
  signUrl: (url: string) => string;
}

/** `/v/{id}/t/{old}/file` → `/v/{id}/t/{token}/file`; other URLs as they are. */
export function replaceToken(url: string, videoId: string, token: string): string {
  const marker = `/v/${videoId}/t/`;
  const start = url.indexOf(marker);
  if (start < 0) return url;
  const end = url.indexOf('/', start + marker.length);
  if (end < 0) return url;
  return url.slice(0, start + marker.length) + token + url.slice(end);
}

/**
 * The token's lifetime in ms, `exp - iat` of its claims (base64url JSON), so
 * the renewal does not depend on the browser's clock agreeing with the server's.
 */
function lifetimeMs(token: string): number {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload)) as { iat?: number; exp?: number };
    if (typeof claims.iat === 'number' && typeof claims.exp === 'number' && claims.exp > claims.iat) {
      return (claims.exp - claims.iat) * 1000;
    }
  } catch {
    // Not a readable JWT: assume the lifetime asked for.
  }
  return TOKEN_TTL_SECONDS * 1000;
}

export function useSignedPlayback(video: Video | null): SignedPlayback {
  const id = video?.id ?? null;
  const needed = !!video && video.visibility === 'private' && (video.state === 'playable' || video.state === 'ready');
  const [playback, setPlayback] = useState<Playback | null>(null);
  const [error, setError] = useState<SignedPlayback['error']>(null);
  const current = useRef<{ id: string; token: string } | null>(null);
  const signUrl = useRef((url: string) => (current.current ? replaceToken(url, current.current.id, current.current.token) : url));

  useEffect(() => {
    setPlayback(null);
    setError(null);
    current.current = null;
    if (!needed || !id) return;
    let cancelled = false;
    let timer: number | undefined;
    const mint = async (first: boolean) => {
      try {
        const answer = await mintPlayback(id, TOKEN_TTL_SECONDS);
        if (cancelled) return;
        current.current = { id, token: answer.token };
        if (first) setPlayback(answer);
        setError(null);
        // `iat` is the server's clock in whole seconds, so the token may end
        // up to 1 s before a full lifetime from now: renew before that.
        const lifetime = lifetimeMs(answer.token);
        const renewIn = Math.max(500, lifetime - 1000 - Math.min(RENEW_BEFORE_MS, lifetime / 5));
        timer = window.setTimeout(() => void mint(false), renewIn);
      } catch (caught) {
        if (cancelled) return;
        const status = caught instanceof ApiError ? caught.status : 0;
        setError({ status, message: (caught as Error).message });
        // A refusal (signed out, not the owner) stands; a lost connection or
        // a server error is retried.
        if (status === 0 || status >= 500) timer = window.setTimeout(() => void mint(first), RETRY_MS);
      }
    };
    void mint(true);
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [id, needed]);

  return { playback, error, signUrl: signUrl.current };
}
