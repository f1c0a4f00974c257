/**
 * Protocol-faithful fake of a webhook agent (docs/providers.md §8) over real loopback HTTP: the operator's
 * own endpoint that gets one JSON POST per customer message and answers `{answer, state?}`.
 *
 * Checks, in this order, like a strict implementation of the contract would (refusals are `{"error": "…"}`): path
 * other than `path` → 404; method other than POST → 405; with a `token`, `Authorization` other than `Bearer <token>`
 * → 401; content type not `application/json` → 415; body not a JSON object, `customer` not four strings `{id,
 * channel, account, externalId}`, `message` not `{type: text|image, text, images: [{mime, base64}]}` with `type`
 * `image` exactly when there are images and valid standard base64, `state` key missing, `history` (when present) not
 * `[{role: user|assistant, content}]`, or any other top-level key → 400.
 *
 * The default answer is `Webhook:` + `message.text` with `state` `{turns: [...state.turns, message.text]}` (the
 * conversation kept in the state itself, as a stateless agent would). The body goes out in two socket writes cut
 * mid-bytes, `delayMs` apart. Units: delays milliseconds, `retryAfterS` seconds, `receivedAt` epoch ms.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createFakeLifecycle, type ScriptedFake, writeChunk as write } from './fake-lifecycle.js';

/** What the fake does with one request that passed the checks. */
export type FakeWebhookBehavior =
  /**
   * HTTP `status` (default 200) JSON `{answer, state}`. `answer` defaults to `Webhook:` + the message text; `state`
   * to the turns state (see the header), `omitState` leaves the key out; `extra` adds keys; `firstByteDelayMs` before
   * the headers; `delayMs` between the two halves of the body (default 15).
   */
  | { kind: 'answer'; answer?: string; state?: unknown; omitState?: boolean; extra?: Record<string, unknown>; status?: number; delayMs?: number; firstByteDelayMs?: number }
  /** That HTTP status with `body` (JSON unless a string; default `{"error": …}`), `retry-after` when given. */
  | { kind: 'status'; status: number; body?: unknown; retryAfterS?: number }
  /** HTTP 200 (or `status`) with exactly `body` as the response text and `contentType` (default application/json). */
  | { kind: 'raw'; body: string; status?: number; contentType?: string }
  /** A redirect (`status`, default 307) to `location`. */
  | { kind: 'redirect'; location: string; status?: number }
  /** 200 + JSON headers, then silence until the client goes away. */
  | { kind: 'hang' }
  /** 200, half the default JSON body, then the body ends cleanly (chunked: a complete but cut-off document). */
  | { kind: 'truncate' }
  /** 200, half the default JSON body, then the socket is destroyed. */
  | { kind: 'drop' };

/** One recorded HTTP request (every request, refused ones too, in arrival order). */
export interface FakeWebhookRequest {
  method: string;
  /** path and query as sent, e.g. `/hooks/agent?tenant=1` */
  url: string;
  /** Lower-cased Node request headers. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; the raw text when it is not JSON (`''` when empty). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** `message.images` decoded, when the body passed the checks */
  images: Array<{ mime: string; data: Buffer }>;
  /** the `state` the fake answered with (undefined: none, or the request was refused or failed) */
  answeredState: unknown;
  /** Arrival time, epoch milliseconds. */
  receivedAt: number;
  /** True once the client closed the connection before the server finished its response. */
  closedByClient: boolean;
}

/** A running fake; see {@link startFakeWebhook}. */
export interface FakeWebhook extends ScriptedFake<FakeWebhookRequest, FakeWebhookBehavior> {
  /** the full webhook URL, `http://127.0.0.1:PORT` + `path` */
  url: string;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const KEYS = new Set(['customer', 'message', 'state', 'history']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why a body breaks the contract, or null (see the header). */
function bodyError(body: unknown): string | null {
  if (!isObj(body)) return 'body must be a JSON object';
  const extra = Object.keys(body).filter((k) => !KEYS.has(k));
  if (extra.length > 0) return `unknown keys: ${extra.join(', ')}`;
  const c = body.customer;
  if (!isObj(c) || !['id', 'channel', 'account', 'externalId'].every((k) => typeof c[k] === 'string') || Object.keys(c).length !== 4) {
    return 'customer must be {id, channel, account, externalId} strings';
  }
  const m = body.message;
  if (!isObj(m) || typeof m.text !== 'string' || !Array.isArray(m.images)) return 'message must be {type, text, images}';
  for (const img of m.images as unknown[]) {
    if (!isObj(img) || typeof img.mime !== 'string' || typeof img.base64 !== 'string' || !BASE64.test(img.base64) || img.base64 === '') {
      return 'message.images must be [{mime, base64}] with standard base64';
    }
  }
  if (m.type !== (m.images.length > 0 ? 'image' : 'text')) return `message.type ${String(m.type)} does not fit ${m.images.length} images`;
  if (!('state' in body)) return 'state is required (null for none)';
  if ('history' in body) {
    const h = body.history;
    if (!Array.isArray(h) || !h.every((t) => isObj(t) && (t.role === 'user' || t.role === 'assistant') && typeof t.content === 'string')) {
      return 'history must be [{role: user|assistant, content}]';
    }
  }
  return null;
}

/**
 * Starts the fake on 127.0.0.1 (random port), serving `path` (default `/hooks/agent?tenant=t1`; the query is part of
 * what must match). `token`: require `Authorization: Bearer <token>`; null or absent: accept any.
 */
export async function startFakeWebhook(opts: { token?: string | null; path?: string } = {}): Promise<FakeWebhook> {
  const path = opts.path ?? '/hooks/agent?tenant=t1';
  const requests: FakeWebhookRequest[] = [];
  const queue: FakeWebhookBehavior[] = [];
  let fallback: FakeWebhookBehavior = { kind: 'answer' };
  const life = createFakeLifecycle('webhook', requests);
  const { sleep } = life;

  const server = createServer((req, res) => {
    const rec: FakeWebhookRequest = {
      method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, body: undefined, images: [], answeredState: undefined,
      receivedAt: Date.now(), closedByClient: false,
    };
    life.serve(rec, res, (destroy) => handle(req, res, rec, destroy), () => sendJson(res, 500, { error: 'internal error' }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, rec: FakeWebhookRequest, destroy: () => void): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts).toString('utf8');
    try {
      rec.body = JSON.parse(raw);
    } catch {
      rec.body = raw;
    }
    life.received(rec);

    if (rec.url !== path) return sendJson(res, 404, { error: `no route ${rec.url}` });
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'POST only' });
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) return sendJson(res, 401, { error: 'unauthorized' });
    if (!/^application\/json\b/i.test(String(req.headers['content-type'] ?? ''))) return sendJson(res, 415, { error: 'JSON only' });
    const bad = bodyError(rec.body);
    if (bad) return sendJson(res, 400, { error: bad });
    const body = rec.body as { message: { text: string; images: Array<{ mime: string; base64: string }> }; state: unknown };
    rec.images = body.message.images.map((i) => ({ mime: i.mime, data: Buffer.from(i.base64, 'base64') }));

    const b = queue.shift() ?? fallback;
    if (b.kind === 'status') {
      const headers: Record<string, string> = b.retryAfterS === undefined ? {} : { 'retry-after': String(b.retryAfterS) };
      if (typeof b.body === 'string') return void res.writeHead(b.status, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end(b.body);
      return sendJson(res, b.status, b.body ?? { error: `fake webhook error ${b.status}` }, headers);
    }
    if (b.kind === 'raw') return void res.writeHead(b.status ?? 200, { 'content-type': b.contentType ?? 'application/json' }).end(b.body);
    if (b.kind === 'redirect') return void res.writeHead(b.status ?? 307, { location: b.location }).end();
    const a = b.kind === 'answer' ? b : undefined;
    await sleep(a?.firstByteDelayMs ?? 0);
    const alive = (): boolean => !life.closing && !res.destroyed;
    if (!alive()) return;
    res.writeHead(a?.status ?? 200, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': `wh_${requests.length}` });
    res.flushHeaders();
    if (b.kind === 'hang') return; // silence; the 'close' listener records the client going away

    const turns = isObj(body.state) && Array.isArray(body.state.turns) ? (body.state.turns as unknown[]) : [];
    const state = a?.state !== undefined ? a.state : { turns: [...turns, body.message.text] };
    const answer = a?.answer ?? `Webhook:${body.message.text}`;
    const full = Buffer.from(JSON.stringify({ answer, ...(a?.omitState ? {} : { state }), ...a?.extra }), 'utf8');
    const half = Math.floor(full.length / 2); // may cut a multi-byte character: the client must decode as a stream
    await write(res, full.subarray(0, half));
    if (b.kind === 'truncate') return void res.end();
    if (b.kind === 'drop') return destroy();
    await sleep(a?.delayMs ?? 15);
    if (!alive()) return;
    if (!a?.omitState) rec.answeredState = state;
    await write(res, full.subarray(half));
    if (alive()) res.end();
  }

  const port = await life.listen(server);

  return {
    url: `http://127.0.0.1:${port}${path}`,
    requests,
    script: (...behaviors) => void queue.push(...behaviors),
    setDefault: (b) => void (fallback = b),
    waitForRequests: (n, timeoutMs) => life.waitForRequests(n, timeoutMs),
    close: () => life.close(server),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
