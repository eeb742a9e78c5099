// Who is signed in. One store for the whole app: the header, the pages that
// need a key and the sign-in page read it and are told when it changes.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getSession } from './api';
import { navigate } from './router';

export type SessionState =
  | { status: 'checking' }
  | { status: 'signed-in'; keyName: string }
  | { status: 'signed-out' }
  | { status: 'unreachable'; message: string };

let state: SessionState = { status: 'checking' };
const listeners = new Set<(next: SessionState) => void>();

export function setSession(next: SessionState): void {
  state = next;
  for (const listener of listeners) listener(next);
}

export async function refreshSession(): Promise<SessionState> {
  try {
    const session = await getSession();
    setSession(session.signed_in ? { status: 'signed-in', keyName: session.key_name } : { status: 'signed-out' });
  } catch (error) {
    // 401 means no (or an expired) session. A server without session
    // support answers 404: nobody can sign in there, so treat it the same.
    if (error instanceof ApiError && (error.status === 401 || error.status === 404)) {
      setSession({ status: 'signed-out' });
    } else {
      setSession({ status: 'unreachable', message: (error as Error).message });
    }
  }
  return state;
}

export function useSession(): SessionState {
  const [current, setCurrent] = useState(state);
  useEffect(() => {
    listeners.add(setCurrent);
    setCurrent(state);
    return () => {
      listeners.delete(setCurrent);
    };
  }, []);
  return current;
}

export function signInUrl(next: string): string {
  return `/signin?next=${encodeURIComponent(next)}`;
}

/** Sends the user to the sign-in page, to come back to `next` afterwards. */
export function requireSignIn(next: string): void {
  setSession({ status: 'signed-out' });
  navigate(signInUrl(next), { replace: true });
}

/** Where the sign-in page may send the user back to: only paths of this app. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//')) return '/';
  return next;
}
