// Entry point: the app shell (header, navigation, one page at a time) and
// the routes. Pages live in src/pages/, the player in src/player/.
import { render } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { deleteSession } from './api';
import { LibraryPage } from './pages/Library';
import { NotFoundPage } from './pages/NotFound';
import { SignInPage } from './pages/SignIn';
import { UploadPage } from './pages/Upload';
import { WatchPage } from './pages/Watch';
import { Link, navigate, useLocation } from './router';
import { refreshSession, setSession, useSession } from './session';
import './styles.css';

function Header({ path }: { path: string }) {
  const session = useSession();
  const signOut = async () => {
    try {
      await deleteSession();
    } finally {
      setSession({ status: 'signed-out' });
      navigate('/');
    }
  };
  const current = (href: string) => (path === href ? 'page' : undefined);
  return (
    <header class="site-header">
      <div class="site-header__inner">
        <Link href="/" class="brand" aria-label="reel, go to the library">
          <svg class="brand__mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
            <rect width="32" height="32" rx="8" />
            <path d="M12 9l12 7-12 7z" />
          </svg>
          <span class="brand__name">reel</span>
        </Link>
        <nav class="site-nav" aria-label="Main">
          <ul>
            <li>
              <Link href="/" aria-current={current('/')}>
                Library
              </Link>
            </li>
            <li>
              <Link href="/upload" aria-current={current('/upload')}>
                Upload
              </Link>
            </li>
            <li>
              {session.status === 'signed-in' ? (
                <button type="button" class="link-button" onClick={signOut} data-testid="sign-out">
                  Sign out<span class="site-nav__who"> ({session.keyName})</span>
                </button>
              ) : (
                <Link href="/signin" aria-current={current('/signin')} data-testid="sign-in-link">
                  Sign in
                </Link>
              )}
            </li>
          </ul>
        </nav>
      </div>
    </header>
  );
}

function App() {
  const location = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const firstRender = useRef(true);

  useEffect(() => {
    void refreshSession();
  }, []);

  // After an in-app navigation, move focus to the new page so that screen
  // readers announce it and keyboard users start from its top.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    mainRef.current?.focus({ preventScroll: true });
  }, [location.path]);

  const path = location.path.replace(/\/+$/, '') || '/';
  let page;
  const watchMatch = /^\/watch\/([^/]+)$/.exec(path);
  if (path === '/') page = <LibraryPage />;
  else if (path === '/upload') page = <UploadPage />;
  else if (path === '/signin') page = <SignInPage next={location.search.get('next')} />;
  else if (watchMatch) page = <WatchPage key={watchMatch[1]} id={decodeURIComponent(watchMatch[1])} search={location.search} />;
  else page = <NotFoundPage />;

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <Header path={path} />
      <main id="main" ref={mainRef} tabIndex={-1} class={watchMatch ? 'main main--wide' : 'main'}>
        {page}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
