/**
 * The server side of the console: the session (`/console/session`), the operator API under `/admin` with the
 * session cookie and the CSRF header, and the live feed (`/admin/events`). Shapes: docs/interface.md "Operator API".
 */

export type Channel = 'kf' | 'mp' | 'bot' | 'openai-compat';
export type State = 'bot' | 'human';

/** A log row as `/admin/messages` lists it. */
export interface Row {
  /** null in a live event (the log assigns it later): use rowKey() to tell rows apart */
  id: string | null;
  at: string;
  direction: 'in' | 'out';
  channel: Channel;
  account: string;
  customerId: string;
  externalId: string;
  msgid: string;
  type: string;
  content: string;
  length?: number;
  status: string;
  agent: string | null;
  latencyMs: number | null;
  inputTokens?: number | null;
  outputTokens?: number | null;
  replyTo?: string | null;
  errcode?: number | null;
}

/** An inbound row settled (`/admin/events` `settled`): its status and LLM figures, by channel, account and msgid. */
export interface Settled {
  channel: Channel;
  account: string;
  msgid: string;
  status: string;
  agent?: string | null;
  latencyMs?: number | null;
  inputTokens?: number | null;
  outputTokens?: number | null;
}

/** One key for a row whether it came from `/admin/messages` or from the live feed (which has no id yet). */
export function rowKey(r: Pick<Row, 'direction' | 'channel' | 'account' | 'msgid' | 'id'>): string {
  return r.msgid ? `${r.direction}|${r.channel}|${r.account}|${r.msgid}` : `id|${r.id ?? ''}`;
}

function idParts(id: string): number[] {
  return id.split('-').map(Number);
}

/**
 * Oldest first. Two rows from the log compare by id (the log's own order: a platform's inbound time has only
 * seconds); a live row (no id yet) by time, an inbound one before an outbound one of the same instant.
 */
export function compareRows(a: Row, b: Row): number {
  if (a.id !== null && b.id !== null && a.id !== b.id) {
    const x = idParts(a.id);
    const y = idParts(b.id);
    if (x.every(Number.isFinite) && y.every(Number.isFinite)) {
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    }
  }
  const dt = Date.parse(a.at) - Date.parse(b.at);
  if (dt) return dt;
  if (a.id === null && b.id !== null) return 1;
  if (b.id === null && a.id !== null) return -1;
  return a.direction === b.direction ? 0 : a.direction === 'in' ? -1 : 1;
}

/** The row with a settlement applied. */
export function applySettled(r: Row, s: Settled): Row {
  const pick = <K extends keyof Settled>(k: K) => (s[k] !== undefined ? { [k]: s[k] } : {});
  return { ...r, status: s.status, ...pick('agent'), ...pick('latencyMs'), ...pick('inputTokens'), ...pick('outputTokens') };
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Identity {
  channel: Channel;
  account: string;
  externalId: string;
}

export interface Customer {
  customerId: string;
  identities: Identity[];
  nickname: string | null;
  firstSeen: string;
  lastSeen: string;
  state: State;
  recent: Row[];
}

export interface Failure {
  id: string;
  at: string;
  channel: 'kf' | 'mp';
  account: string;
  customerId: string;
  externalId: string;
  msgid: string;
  parts: string[];
  sent: number;
  partIds?: string[];
  errcode: number | null;
  reason: string;
  replays?: number;
}

export interface Status {
  version: string;
  uptimeS: number;
  role: 'all' | 'web' | 'worker';
  store: 'memory' | 'redis';
  log: 'memory' | 'redis' | 'mysql';
  ready: boolean;
  channels: { kf: boolean; mp: boolean; bot: boolean };
  agents: string[];
  queue: { waiting: number; active: number; delayed: number };
  lastHour: { received: number; answered: number; fallback: number; failed: number };
  logHealth?: { ok: boolean; buffered: number; dropped: number; lastError: string | null };
}

export type Health = 'up' | 'down' | 'off';

export interface Summary {
  perMinute: { t: string; answered: number; fallback: number; failed: number }[];
  ackP99Ms: number | null;
  llm: { agent: string; p95Ms: number | null; breakerOpen: boolean }[];
  queue: { waiting: number; active: number; delayed: number; lagP99Ms: number | null };
  redis: Health;
  mysql: Health;
}

/** A non-2xx answer; `message` is the server's `error` field when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let csrf = '';
let onUnauthorized: () => void = () => undefined;

/** Called whenever the server says the session is gone (401): the app shows the login form. */
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

export function csrfToken(): string {
  return csrf;
}

/** The session: `{csrf, lang?}` when the cookie is valid, null when the server answers 401. */
export async function loadSession(): Promise<{ csrf: string; lang?: string } | null> {
  const res = await fetch('/console/session', { credentials: 'same-origin', headers: { accept: 'application/json' }, cache: 'no-store' });
  if (res.status === 401) return null;
  if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`);
  const s = (await res.json()) as { csrf: string; lang?: string };
  csrf = s.csrf;
  return s;
}

async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/admin${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  if (res.status === 401) {
    onUnauthorized();
    throw new ApiError(401, 'unauthorized');
  }
  if (!res.ok) {
    const msg = json && typeof json === 'object' && 'error' in json ? String((json as { error: unknown }).error) : `HTTP ${res.status}`;
    throw new ApiError(res.status, msg);
  }
  return json as T;
}

/** `?a=1&b=2` of the set values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

const cid = (id: string) => encodeURIComponent(id);

export const api = {
  messages: (p: { channel?: string; account?: string; customer?: string; q?: string; limit?: number; cursor?: string | null }) =>
    call<Page<Row>>('GET', `/messages${query({ limit: 200, ...p })}`),
  customer: (id: string) => call<Customer>('GET', `/customers/${cid(id)}`),
  reset: (id: string) => call<{ reset: boolean }>('POST', `/customers/${cid(id)}/reset`),
  reply: (id: string, text: string) => call<Record<string, unknown>>('POST', `/customers/${cid(id)}/reply`, { text }),
  handoff: (id: string) => call<{ state: State }>('POST', `/customers/${cid(id)}/handoff`),
  resume: (id: string) => call<{ state: State }>('POST', `/customers/${cid(id)}/resume`),
  failures: (cursor?: string | null) => call<Page<Failure>>('GET', `/failures${query({ limit: 100, cursor })}`),
  replay: (id: string) => call<{ replayed: boolean; errcode?: number | null; reason?: string | null }>('POST', `/failures/${encodeURIComponent(id)}/replay`),
  status: () => call<Status>('GET', '/status'),
  summary: () => call<Summary>('GET', '/summary'),
  doctor: () => call<{ results: DoctorLine[] }>('POST', '/doctor'),
};

/** One line of `npm run doctor` (POST /admin/doctor). */
export interface DoctorLine {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  warning?: boolean;
}

/** The error's text for the operator. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.status >= 500 || e.message.startsWith('HTTP') ? `${e.message} (${e.status})` : e.message;
  return e instanceof Error ? e.message : String(e);
}

// ---- live feed -------------------------------------------------------------------------------------------

export interface LiveHandlers {
  message?: (row: Row) => void;
  settled?: (s: Settled) => void;
  state?: (ev: { customerId: string; state: State }) => void;
  /** the feed (re)connected: anything may have been missed before it */
  open?: () => void;
}

const subscribers = new Set<LiveHandlers>();
const liveListeners = new Set<(live: boolean) => void>();
let source: EventSource | null = null;
let live = false;
let retry: ReturnType<typeof setTimeout> | undefined;

function setLive(v: boolean): void {
  if (live === v) return;
  live = v;
  for (const l of liveListeners) l(v);
}

export function isLive(): boolean {
  return live;
}

export function onLive(f: (live: boolean) => void): () => void {
  liveListeners.add(f);
  return () => void liveListeners.delete(f);
}

/** Receives the feed's events until the returned function is called. */
export function subscribe(h: LiveHandlers): () => void {
  subscribers.add(h);
  return () => void subscribers.delete(h);
}

function parse<T>(data: unknown): T | null {
  try {
    return JSON.parse(String(data)) as T;
  } catch {
    return null;
  }
}

/** Opens `/admin/events` (once); reconnects after errors; a lost session ends it and shows the login form. */
export function connectLive(): void {
  if (source) return;
  const es = new EventSource('/admin/events', { withCredentials: true });
  source = es;
  es.addEventListener('open', () => {
    setLive(true);
    for (const s of subscribers) s.open?.();
  });
  es.addEventListener('message', (e) => {
    const row = parse<Row>((e as MessageEvent).data);
    if (row) for (const s of subscribers) s.message?.(row);
  });
  es.addEventListener('settled', (e) => {
    const st = parse<Settled>((e as MessageEvent).data);
    if (st) for (const s of subscribers) s.settled?.(st);
  });
  es.addEventListener('state', (e) => {
    const ev = parse<{ customerId: string; state: State }>((e as MessageEvent).data);
    if (ev) for (const s of subscribers) s.state?.(ev);
  });
  es.addEventListener('error', () => {
    setLive(false);
    if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    // Closed for good (an HTTP error such as 401): find out why, then start over.
    source = null;
    clearTimeout(retry);
    retry = setTimeout(() => {
      loadSession().then(
        (s) => (s ? connectLive() : onUnauthorized()),
        () => connectLive(),
      );
    }, 3000);
  });
}

export function disconnectLive(): void {
  clearTimeout(retry);
  source?.close();
  source = null;
  setLive(false);
}
