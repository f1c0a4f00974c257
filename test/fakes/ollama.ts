/**
 * Protocol-faithful fake of Ollama's native `POST /api/chat` over real loopback HTTP with real NDJSON framing
 * (node:http, so every socket write is under our control). Protocol: docs/providers.md §4 and §7.
 *
 * Checks, in this order (errors are `{"error":"…"}` JSON like Ollama): body not JSON → 400; `model` missing → 400
 * "model is required"; model not installed → 404 `model "x" not found, try pulling it first` (a name without a tag
 * means `:latest`, as in Ollama); `messages` not an array of `{role, content}` objects → 400; an `images` entry that
 * is not plain base64 (e.g. a `data:` URI) → 400 `illegal base64 data at input byte N` (Go's message). Empty or
 * missing `messages` is Ollama's "load the model" call: one `done:true` object with `done_reason:"load"`. No auth.
 * Also `GET /` ("Ollama is running"), `GET /api/tags`, `GET /api/version`; other paths 404 `404 page not found`.
 *
 * Stream (`stream` absent or true): `application/x-ndjson`, one JSON object per `\n`-terminated line:
 * `message.thinking` deltas → `message.content` deltas (`done:false`; the first content line, or the final line when
 * there is no content, goes out in two socket writes, cut mid-bytes) → final `done:true` line with `done_reason`,
 * counts and durations. `stream:false` → one JSON object with the whole message. Units: delays milliseconds,
 * `receivedAt` epoch ms, `chunkSize` Unicode code points, `*_duration` nanoseconds, counts are character counts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createFakeLifecycle, type ScriptedFake, writeChunk as write } from './fake-lifecycle.js';

/** What the fake does with one accepted `/api/chat` request (passed the checks above, non-empty `messages`). */
export type FakeOllamaBehavior =
  /** Normal reply. `text` defaults to `Ollama:` + the last user message; `thinking` as `message.thinking` deltas
   *  first; `doneReason` default `stop`; `chunkSize` default 4; `delayMs` between deltas; `firstByteDelayMs` before
   *  the headers. */
  | { kind: 'answer'; text?: string; thinking?: string; doneReason?: string; chunkSize?: number; delayMs?: number; firstByteDelayMs?: number }
  /** That HTTP status with `{"error": error}` (default per status, e.g. 429 "server busy…"). */
  | { kind: 'status'; status: number; error?: string }
  /** `afterDeltas` content lines, then a `{"error":…}` line under HTTP 200 and the body ends (non-stream: HTTP 500). */
  | { kind: 'error-line'; afterDeltas: number; error?: string }
  /** `afterDeltas` content lines, then the body ends cleanly without a `done:true` line. */
  | { kind: 'truncate'; afterDeltas: number }
  /** `afterDeltas` content lines, then the socket is destroyed. */
  | { kind: 'drop'; afterDeltas: number }
  /** Stream: 200 + NDJSON headers, then silence until the client goes away. Non-stream: no response at all. */
  | { kind: 'hang' }
  /** `afterDeltas` content lines, then one line of cut-off JSON, then the rest of a normal stream. */
  | { kind: 'invalid-json'; afterDeltas: number };

/** One recorded HTTP request (every request, rejected ones too, in arrival order). */
export interface FakeOllamaRequest {
  /** e.g. `POST` and `/api/chat`. */
  method: string;
  path: string;
  /** Lower-cased Node request headers. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body (`keep_alive`, `options`, `images` as sent); the raw text when it is not JSON (`''` when empty). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The `images` of every message, decoded, in message order (empty when none or when the base64 check refused). */
  images: Array<{ message: number; data: Buffer }>;
  /** Arrival time, epoch milliseconds. */
  receivedAt: number;
  /** True once the client closed the connection before the server finished its response. */
  closedByClient: boolean;
}

/** A running fake; see {@link startFakeOllama}. */
export interface FakeOllama extends ScriptedFake<FakeOllamaRequest, FakeOllamaBehavior> {
  /** `http://127.0.0.1:PORT`, no trailing slash (the adapter appends `/api/chat`). */
  baseUrl: string;
  /** Installed models, normalised to `name:tag`. */
  models: string[];
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const withTag = (name: string): string => (name.includes(':') ? name : `${name}:latest`);
/** Index of the first byte Go's base64 decoder rejects, or -1 when `s` is valid standard base64. */
const badBase64At = (s: string): number => {
  const i = s.search(/[^A-Za-z0-9+/=]/);
  if (i !== -1) return i;
  return /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0 ? -1 : Math.max(0, s.length - 1);
};

function chunkText(text: string, size: number): string[] {
  const cps = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < cps.length; i += Math.max(1, size)) out.push(cps.slice(i, i + Math.max(1, size)).join(''));
  return out;
}

function defaultError(status: number): string {
  if (status === 429) return 'server busy, please try again.  maximum pending requests exceeded';
  if (status === 400) return 'invalid request';
  if (status === 502) return 'an error was encountered while running the model: unexpected EOF';
  return status >= 500 ? 'llama runner process has terminated: exit status 2' : `fake ollama error ${status}`;
}

/** Starts the fake on 127.0.0.1 (random port). `models`: installed models (default `['llama3.2']`, i.e.
 *  `llama3.2:latest`); responses echo the request's `model` string as sent. */
export async function startFakeOllama(opts: { models?: string[] } = {}): Promise<FakeOllama> {
  const models = (opts.models ?? ['llama3.2']).map(withTag);
  const requests: FakeOllamaRequest[] = [];
  const queue: FakeOllamaBehavior[] = [];
  let fallback: FakeOllamaBehavior = { kind: 'answer' };
  const life = createFakeLifecycle('ollama', requests);
  const { sleep } = life;

  const server = createServer((req, res) => {
    const rec: FakeOllamaRequest = { method: req.method ?? '', path: new URL(req.url ?? '/', 'http://fake').pathname, headers: { ...req.headers }, body: undefined, images: [], receivedAt: Date.now(), closedByClient: false };
    life.serve(rec, res, (destroy) => handle(req, res, rec, destroy), () => sendJson(res, 500, { error: 'internal error' }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, rec: FakeOllamaRequest, destroy: () => void): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts).toString('utf8');
    try {
      rec.body = JSON.parse(raw);
    } catch {
      rec.body = raw;
    }
    life.received(rec);

    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && rec.path === '/') return void res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('Ollama is running');
    if (get && rec.path === '/api/version') return sendJson(res, 200, { version: '0.12.6' });
    if (get && rec.path === '/api/tags') {
      const list = models.map((m) => ({ name: m, model: m, modified_at: new Date(0).toISOString(), size: 0, digest: '0'.repeat(64), details: {} }));
      return sendJson(res, 200, { models: list });
    }
    if (req.method !== 'POST' || rec.path !== '/api/chat') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
    const body: unknown = rec.body;
    if (!isObj(body)) return sendJson(res, 400, { error: raw === '' ? 'EOF' : 'invalid character in JSON body' });
    if (typeof body.model !== 'string' || body.model === '') return sendJson(res, 400, { error: 'model is required' });
    if (!models.includes(withTag(body.model))) return sendJson(res, 404, { error: `model "${body.model}" not found, try pulling it first` });
    const messages = body.messages ?? [];
    if (!Array.isArray(messages) || !messages.every((m) => isObj(m) && typeof m.role === 'string' && (m.content === undefined || typeof m.content === 'string'))) {
      return sendJson(res, 400, { error: 'invalid message format' });
    }
    const images: FakeOllamaRequest['images'] = [];
    for (const [i, m] of (messages as Json[]).entries()) {
      for (const img of Array.isArray(m.images) ? (m.images as unknown[]) : m.images === undefined ? [] : [m.images]) {
        const at = typeof img === 'string' ? badBase64At(img) : 0;
        if (at !== -1) return sendJson(res, 400, { error: `illegal base64 data at input byte ${at}` });
        images.push({ message: i, data: Buffer.from(img as string, 'base64') });
      }
    }
    rec.images = images;
    const model = body.model;
    const stream = body.stream !== false;
    const head = (): Json => ({ model, created_at: new Date().toISOString() });
    if (messages.length === 0) return sendJson(res, 200, { ...head(), message: { role: 'assistant', content: '' }, done_reason: 'load', done: true });

    const b = queue.shift() ?? fallback;
    if (b.kind === 'status') return sendJson(res, b.status, { error: b.error ?? defaultError(b.status) });
    const a = b.kind === 'answer' ? b : undefined;
    const lastUser = [...(messages as Json[])].reverse().find((m) => m.role === 'user');
    const text = a?.text ?? `Ollama:${String(lastUser?.content ?? '')}`;
    const thinking = a?.thinking ?? '';
    const promptCount = (messages as Json[]).reduce((n, m) => n + Array.from(String(m.content ?? '')).length, 0);
    const evalCount = Array.from(text).length + Array.from(thinking).length;
    const stats = {
      total_duration: 1_500_000 + promptCount * 1_000_000 + evalCount * 2_000_000,
      load_duration: 1_500_000,
      prompt_eval_count: promptCount,
      prompt_eval_duration: promptCount * 1_000_000,
      eval_count: evalCount,
      eval_duration: evalCount * 2_000_000,
    };
    const doneReason = a?.doneReason ?? 'stop';
    await sleep(a?.firstByteDelayMs ?? 0);
    const alive = (): boolean => !life.closing && !res.destroyed;
    if (!alive()) return;

    if (!stream) {
      if (b.kind === 'hang') return; // no headers at all, like a stuck runner
      if (b.kind === 'error-line') return sendJson(res, 500, { error: b.error ?? defaultError(500) });
      const message: Json = { role: 'assistant', content: text, ...(thinking ? { thinking } : {}) };
      const full = JSON.stringify({ ...head(), message, done_reason: doneReason, done: true, ...stats });
      if (b.kind === 'answer') return void res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(full);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      await write(res, full.slice(0, Math.floor(full.length / 2))); // truncate / drop / invalid-json: half a body
      return b.kind === 'drop' ? destroy() : void res.end();
    }

    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.flushHeaders();
    if (b.kind === 'hang') return; // silence; the 'close' listener records the client going away

    const size = a?.chunkSize ?? 4;
    let splitDone = false;
    /** Writes one NDJSON line; the first `split` line goes out in two writes, cut mid-bytes. */
    const line = async (data: string, split = false): Promise<void> => {
      if (!alive()) return;
      const bytes = Buffer.from(`${data}\n`, 'utf8');
      if (!split || splitDone) return write(res, bytes);
      splitDone = true;
      const half = Math.floor(bytes.length / 2);
      await write(res, bytes.subarray(0, half));
      await sleep(15);
      if (alive()) await write(res, bytes.subarray(half));
    };
    const delta = (message: Json): string => JSON.stringify({ ...head(), message: { role: 'assistant', ...message }, done: false });

    for (const piece of chunkText(thinking, size)) await line(delta({ content: '', thinking: piece }));
    const limit = 'afterDeltas' in b ? b.afterDeltas : Infinity;
    const deltas = chunkText(text, size);
    for (const [i, piece] of deltas.entries()) {
      if (i >= limit) break;
      if (i > 0 || thinking) await sleep(a?.delayMs ?? 0);
      await line(delta({ content: piece }), true);
    }
    if (!alive()) return;
    if (b.kind === 'truncate') return void res.end();
    if (b.kind === 'drop') return destroy();
    if (b.kind === 'error-line') {
      await line(JSON.stringify({ error: b.error ?? 'an error was encountered while running the model: unexpected EOF' }), true);
      return void (alive() && res.end());
    }
    if (b.kind === 'invalid-json') {
      await line(delta({ content: 'x' }).slice(0, 40)); // a cut-off JSON object, then the rest of a normal stream
      for (const piece of deltas.slice(b.afterDeltas)) await line(delta({ content: piece }));
    }
    await line(JSON.stringify({ ...head(), message: { role: 'assistant', content: '' }, done_reason: doneReason, done: true, ...stats }), true);
    if (alive()) res.end();
  }

  const port = await life.listen(server);

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    models,
    script: (...behaviors) => void queue.push(...behaviors),
    setDefault: (b) => void (fallback = b),
    waitForRequests: (n, timeoutMs) => life.waitForRequests(n, timeoutMs),
    close: () => life.close(server),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
}
