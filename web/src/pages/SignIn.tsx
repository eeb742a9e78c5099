// Sign in with an API key: the server checks it and sets an HTTP-only
// session cookie, so the key never stays in the page or in storage.
import type { TargetedEvent } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, createSession } from '../api';
import { navigate } from '../router';
import { safeNext, setSession, useSession } from '../session';

export function SignInPage({ next }: { next: string | null }) {
  const session = useSession();
  const [apiKey, setApiKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const destination = safeNext(next);

  useEffect(() => {
    document.title = 'Sign in · reel';
    inputRef.current?.focus();
  }, []);

  const submit = async (event: TargetedEvent<HTMLFormElement>) => {
    event.preventDefault();
    const trimmed = apiKey.trim();
    if (!trimmed) {
      setError('Enter an API key.');
      inputRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const answer = await createSession(trimmed);
      setSession({ status: 'signed-in', keyName: answer.key_name });
      setApiKey('');
      navigate(destination, { replace: true });
    } catch (caught) {
      const message =
        caught instanceof ApiError && (caught.status === 401 || caught.status === 403)
          ? 'This API key is not valid. Check it and try again.'
          : (caught as Error).message;
      setError(message);
      setBusy(false);
      inputRef.current?.focus();
    }
  };

  return (
    <section class="page page--narrow">
      <div class="card signin">
        <h1>Sign in</h1>
        <p class="muted">
          Use an API key of this reel server. The admin key is printed by the first <code>reel serve</code>; more
          come from <code>reel keys create</code>.
        </p>
        {session.status === 'signed-in' && (
          <p class="notice" role="status">
            You are signed in as <strong>{session.keyName}</strong>. Signing in again replaces that session.
          </p>
        )}
        <form onSubmit={submit} noValidate>
          <label for="api-key" class="field-label">
            API key
          </label>
          <input
            id="api-key"
            ref={inputRef}
            class="text-input"
            type="password"
            name="api_key"
            autocomplete="current-password"
            spellcheck={false}
            value={apiKey}
            onInput={(e) => setApiKey((e.target as HTMLInputElement).value)}
            aria-invalid={error ? 'true' : undefined}
            aria-describedby={error ? 'api-key-error' : undefined}
            placeholder="reel_…"
            data-testid="api-key-input"
          />
          {error && (
            <p id="api-key-error" class="field-error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="button button--primary button--block" disabled={busy} data-testid="signin-submit">
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </div>
    </section>
  );
}
