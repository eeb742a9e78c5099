// Client-side routing on the History API. The server answers every app path
// with index.html, so a reload or a shared link lands on the same page.
import type { ComponentChildren, PartialAnchorHTMLAttributes, TargetedMouseEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export interface Location {
  path: string;
  search: URLSearchParams;
}

const listeners = new Set<() => void>();

function currentLocation(): Location {
  return { path: window.location.pathname, search: new URLSearchParams(window.location.search) };
}

function notify(): void {
  for (const listener of listeners) listener();
}

window.addEventListener('popstate', notify);

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  notify();
  if (!options.replace) window.scrollTo(0, 0);
}

/** Changes the query string without a page change (no re-render of the route). */
export function replaceSearch(search: URLSearchParams): void {
  const query = search.toString();
  window.history.replaceState(null, '', `${window.location.pathname}${query ? `?${query}` : ''}`);
}

export function useLocation(): Location {
  const [location, setLocation] = useState(currentLocation);
  useEffect(() => {
    const listener = () => setLocation(currentLocation());
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return location;
}

type LinkProps = Omit<PartialAnchorHTMLAttributes<HTMLAnchorElement>, 'href' | 'role'> & { href: string; children?: ComponentChildren };

/** An <a> that navigates in place on a plain left click and behaves as a normal link otherwise. */
export function Link({ href, children, onClick, ...rest }: LinkProps) {
  const handleClick = (event: TargetedMouseEvent<HTMLAnchorElement>) => {
    if (onClick) (onClick as (e: TargetedMouseEvent<HTMLAnchorElement>) => void)(event);
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={handleClick} {...rest}>
      {children}
    </a>
  );
}
