/** Hash routes, so the server serves one index.html: `#/`, `#/c/<customerId>`, `#/failures`, `#/status`. */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  name: 'conversations' | 'conversation' | 'failures' | 'status';
  id?: string;
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const [path = '/', qs = ''] = raw.split('?', 2);
  const params = new URLSearchParams(qs);
  const c = /^\/c\/([^/]+)$/.exec(path);
  if (c?.[1]) return { name: 'conversation', id: decodeURIComponent(c[1]), params };
  if (path === '/failures') return { name: 'failures', params };
  if (path === '/status') return { name: 'status', params };
  return { name: 'conversations', params };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parseHash(hash);
}

export const href = {
  conversations: (params?: Record<string, string>) => {
    const q = new URLSearchParams(Object.entries(params ?? {}).filter(([, v]) => v)).toString();
    return `#/${q ? `?${q}` : ''}`;
  },
  conversation: (id: string) => `#/c/${encodeURIComponent(id)}`,
  failures: () => '#/failures',
  status: () => '#/status',
};

/** Replaces the hash's query without a new history entry (filters as the operator types). */
export function replaceParams(params: Record<string, string>): void {
  history.replaceState(null, '', href.conversations(params));
  dispatchEvent(new HashChangeEvent('hashchange'));
}
