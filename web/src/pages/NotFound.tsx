// The page for any path the app does not know.
import { useEffect } from 'preact/hooks';
import { Link } from '../router';

export function NotFoundPage() {
  useEffect(() => {
    document.title = 'Not found · reel';
  }, []);
  return (
    <section class="page page--narrow">
      <h1>Page not found</h1>
      <p>
        There is nothing here. Go to the <Link href="/">library</Link> or <Link href="/upload">upload a video</Link>.
      </p>
    </section>
  );
}
