/**
 * Protocol-faithful fake of an OpenAI-compatible `POST /v1/chat/completions` endpoint (OpenAI, DeepSeek), served
 * over real loopback HTTP with real SSE framing (node:http, so every socket write is under our control).
 * Protocol: docs/providers.md §3 and §7.
 *
 * Stream shape: `: keep-alive` comment → role chunk → `reasoning_content` deltas → content deltas (the first one is
 * written in two socket writes, split mid-bytes) → finish chunk (CRLF-framed) → usage chunk (`choices: []`, only
 * with `stream_options.include_usage`) → `data: [DONE]`. Units: every delay is milliseconds, `retryAfterS` seconds,
 * `receivedAt` epoch ms, `chunkSize` Unicode code points, token counts are character counts.
 *
 * Content parts (vision): a message `content` may be an array of `{type:"text", text}` and `{type:"image_url",
 * image_url:{url, detail?}}` parts. Refused with OpenAI-shaped 400s: an empty array, an unknown part type, an image
 * part outside a `user` message, a URL that is neither http(s) nor `data:image/(png|jpeg|gif|webp);base64,<valid
 * base64>`. Accepted images are decoded onto the request record (`images`) so tests assert on the bytes.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createFakeLifecycle, type ScriptedFake, writeChunk as write } from './fake-lifecycle.js';

/** What the fake does with one accepted chat-completions request. */
export type FakeOpenAIBehavior =
  /** Normal reply. `text` defaults to `AI:` + the last user message; `chunkSize` (code points, default 4) per delta,
   *  `delayMs` between deltas, `firstByteDelayMs` before the headers, `reasoning` as DeepSeek `reasoning_content`
   *  deltas before the content, `finishReason` default `stop`. */
  | { kind: 'answer'; text?: string; chunkSize?: number; delayMs?: number; firstByteDelayMs?: number; reasoning?: string; finishReason?: string }
  /** That HTTP status with `body` (JSON unless a string; default an OpenAI error object), `retry-after` when given. */
  | { kind: 'status'; status: number; body?: unknown; retryAfterS?: number }
  /** Stream: 200 + SSE headers, then silence until the client goes away. Non-stream: no response at all. */
  | { kind: 'hang' }
  /** `afterDeltas` content deltas, then the body ends cleanly: no finish_reason, no [DONE]. */
  | { kind: 'truncate'; afterDeltas: number }
  /** `afterDeltas` content deltas, then the socket is destroyed. */
  | { kind: 'drop'; afterDeltas: number }
  /** `afterDeltas` content deltas, then `data: {"error":{…,"type":"server_error"}}` and the body ends. */
  | { kind: 'error-frame'; afterDeltas: number }
  /** `afterDeltas` content deltas, then one frame of broken JSON, then the rest of a normal stream. */
  | { kind: 'invalid-json'; afterDeltas: number };

/** One `image_url` part the fake received, in message order. */
export interface FakeOpenAIImage {
  /** index in `messages` of the message that carried it */
  message: number;
  /** a data URL's MIME type and decoded bytes; null for an http(s) URL */
  mime: string | null;
  data: Buffer | null;
  /** the http(s) URL; null for a data URL (the bytes are in `data`) */
  url: string | null;
}

/** One recorded HTTP request (every request, rejected ones too, in arrival order). */
export interface FakeOpenAIRequest {
  /** Lower-cased Node request headers. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; the raw text when it is not JSON (`''` when empty). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The image parts of a request that passed the content checks (empty otherwise). */
  images: FakeOpenAIImage[];
  /** Arrival time, epoch milliseconds. */
  receivedAt: number;
  /** True once the client closed the connection before the server finished its response. */
  closedByClient: boolean;
}

/** A running fake; see {@link startFakeOpenAI}. */
export interface FakeOpenAI extends ScriptedFake<FakeOpenAIRequest, FakeOpenAIBehavior> {
  /** e.g. `http://127.0.0.1:PORT/v1` — the adapter appends `/chat/completions`. */
  baseUrl: string;
}

type Json = Record<string, unknown>;
const id = (prefix: string, bytes = 12): string => prefix + randomBytes(bytes).toString('hex');

function partsText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p: unknown) => (p && typeof p === 'object' && (p as Json).type === 'text' ? String((p as Json).text ?? '') : ''))
    .join('');
}

const DATA_URL = /^data:(image\/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/]*={0,2})$/;

/** Checks every array `content` (see the header); the images found, or the 400 `{message, param, code}`. */
function checkParts(messages: unknown[]): { images: FakeOpenAIImage[] } | { message: string; param: string; code: string } {
  const images: FakeOpenAIImage[] = [];
  for (const [i, m] of messages.entries()) {
    const content = m && typeof m === 'object' ? (m as Json).content : undefined;
    if (!Array.isArray(content)) continue;
    const role = (m as Json).role;
    if (content.length === 0) return { message: `Invalid 'messages[${i}].content': empty array. Expected an array with minimum length 1, but got an empty array instead.`, param: `messages[${i}].content`, code: 'empty_array' };
    for (const [j, part] of (content as unknown[]).entries()) {
      const p = (part && typeof part === 'object' ? part : {}) as Json;
      const param = `messages[${i}].content[${j}]`;
      if (p.type === 'text') {
        if (typeof p.text !== 'string') return { message: `Missing required parameter: '${param}.text'.`, param: `${param}.text`, code: 'missing_required_parameter' };
        continue;
      }
      if (p.type !== 'image_url') return { message: `Invalid value: '${String(p.type)}'. Supported values are: 'text' and 'image_url'.`, param: `${param}.type`, code: 'invalid_value' };
      if (role !== 'user') return { message: `Image URLs are only allowed for messages with role 'user', but this message with role '${String(role)}' contains an image URL.`, param, code: 'invalid_value' };
      const url = (p.image_url && typeof p.image_url === 'object' ? (p.image_url as Json).url : undefined) as unknown;
      if (typeof url !== 'string') return { message: `Missing required parameter: '${param}.image_url.url'.`, param: `${param}.image_url.url`, code: 'missing_required_parameter' };
      if (/^https?:\/\//.test(url)) {
        images.push({ message: i, mime: null, data: null, url });
        continue;
      }
      const d = DATA_URL.exec(url);
      if (!d || d[2] === '' || (d[2] ?? '').length % 4 !== 0) {
        return { message: `Invalid image URL: '${param}.image_url.url'. Expected a base64-encoded data URL with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got an invalid value.`, param: `${param}.image_url.url`, code: 'invalid_image_url' };
      }
      images.push({ message: i, mime: d[1] ?? '', data: Buffer.from(d[2] ?? '', 'base64'), url: null });
    }
  }
  return { images };
}

function chunkText(text: string, size: number): string[] {
  const cps = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < cps.length; i += Math.max(1, size)) out.push(cps.slice(i, i + Math.max(1, size)).join(''));
  return out;
}

function defaultErrorBody(status: number): Json {
  const [type, code, message] =
    status === 401 ? ['invalid_request_error', 'invalid_api_key', 'Incorrect API key provided']
    : status === 429 ? ['requests', 'rate_limit_exceeded', 'Rate limit reached for requests']
    : status < 500 ? ['invalid_request_error', null, `Fake error with status ${status}`]
    : ['server_error', null, 'The server had an error while processing your request. Sorry about that!'];
  return { error: { message, type, param: null, code } };
}

/** Starts the fake on 127.0.0.1 (random port). `apiKey`: require `Authorization: Bearer <apiKey>` (else 401).
 *  `model`: require this request `model` (else 404 model_not_found); responses echo the request's model. */
export async function startFakeOpenAI(opts: { apiKey?: string; model?: string } = {}): Promise<FakeOpenAI> {
  const requests: FakeOpenAIRequest[] = [];
  const queue: FakeOpenAIBehavior[] = [];
  let fallback: FakeOpenAIBehavior = { kind: 'answer' };
  const life = createFakeLifecycle('openai', requests);
  const { sleep } = life;

  const server = createServer((req, res) => {
    const rec: FakeOpenAIRequest = { headers: { ...req.headers }, body: undefined, images: [], receivedAt: Date.now(), closedByClient: false };
    life.serve(rec, res, (destroy) => handle(req, res, rec, destroy), () => sendJson(res, 500, defaultErrorBody(500)));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, rec: FakeOpenAIRequest, destroy: () => void): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts).toString('utf8');
    try {
      rec.body = JSON.parse(raw);
    } catch {
      rec.body = raw;
    }
    life.received(rec);

    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      const message = `Invalid URL (${req.method} ${path})`;
      return sendJson(res, 404, { error: { message, type: 'invalid_request_error', param: null, code: null } });
    }
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) return sendJson(res, 401, defaultErrorBody(401));
    const body = rec.body as Json;
    if (typeof body !== 'object' || body === null || !Array.isArray(body.messages)) {
      const message = typeof body === 'object' && body !== null ? "Missing required parameter: 'messages'." : 'We could not parse the JSON body of your request.';
      return sendJson(res, 400, { error: { message, type: 'invalid_request_error', param: null, code: null } });
    }
    const checked = checkParts(body.messages as unknown[]);
    if (!('images' in checked)) return sendJson(res, 400, { error: { ...checked, type: 'invalid_request_error' } });
    rec.images = checked.images;
    if (opts.model !== undefined && body.model !== opts.model) {
      const message = `The model \`${String(body.model)}\` does not exist or you do not have access to it.`;
      return sendJson(res, 404, { error: { message, type: 'invalid_request_error', param: null, code: 'model_not_found' } });
    }
    const b = queue.shift() ?? fallback;
    const messages = body.messages as Json[];
    const lastUser = [...messages].reverse().find((m) => m?.role === 'user');
    const text = (b.kind === 'answer' ? b.text : undefined) ?? `AI:${partsText(lastUser?.content)}`;
    const reasoning = b.kind === 'answer' ? (b.reasoning ?? '') : '';
    const usage = (() => {
      const prompt = messages.reduce((n, m) => n + Array.from(partsText(m?.content)).length, 0);
      const completion = Array.from(text).length + Array.from(reasoning).length;
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    })();
    const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
    const cmplId = id('chatcmpl-');
    const created = Math.floor(Date.now() / 1000);
    const head = (object: string): Json => ({ id: cmplId, object, created, model, system_fingerprint: 'fp_fake' });
    const alive = (): boolean => !life.closing && !res.destroyed;
    const requestId = id('req_', 16);

    if (b.kind === 'status') {
      const headers: Record<string, string> = { 'x-request-id': requestId };
      if (b.retryAfterS !== undefined) headers['retry-after'] = String(b.retryAfterS);
      if (typeof b.body === 'string') return void res.writeHead(b.status, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end(b.body);
      return sendJson(res, b.status, b.body ?? defaultErrorBody(b.status), headers);
    }
    if (b.kind === 'answer') await sleep(b.firstByteDelayMs ?? 0);
    if (!alive()) return;

    if (!body.stream) {
      if (b.kind === 'hang') return; // no headers at all, like a stuck upstream
      if (b.kind === 'error-frame') return sendJson(res, 500, defaultErrorBody(500), { 'x-request-id': requestId });
      const finish = b.kind === 'answer' ? (b.finishReason ?? 'stop') : 'stop';
      const message: Json = { role: 'assistant', content: text, refusal: null };
      if (reasoning) message.reasoning_content = reasoning;
      const full = JSON.stringify({ ...head('chat.completion'), choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage });
      if (b.kind === 'answer') return sendJson(res, 200, JSON.parse(full), { 'x-request-id': requestId });
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': requestId });
      await write(res, full.slice(0, Math.floor(full.length / 2))); // truncate / drop / invalid-json: half a body
      return b.kind === 'drop' ? destroy() : void res.end();
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': requestId });
    res.flushHeaders();
    if (b.kind === 'hang') return; // silence; the 'close' listener records the client going away

    const includeUsage = (body.stream_options as Json | undefined)?.include_usage === true;
    const chunk = (delta: Json, finish: string | null = null): string =>
      JSON.stringify({ ...head('chat.completion.chunk'), choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(includeUsage ? { usage: null } : {}) });
    const size = b.kind === 'answer' ? (b.chunkSize ?? 4) : 4;
    const delay = b.kind === 'answer' ? (b.delayMs ?? 0) : 0;
    const deltas = chunkText(text, size);
    const limit = b.kind === 'answer' ? Infinity : b.afterDeltas;
    let splitDone = false;
    /** Writes one `data:` frame; the first content delta (or the finish chunk if none) goes out in two writes. */
    const frame = async (data: string, opt: { split?: boolean; crlf?: boolean } = {}): Promise<void> => {
      if (!alive()) return;
      const bytes = Buffer.from(`data: ${data}${opt.crlf ? '\r\n\r\n' : '\n\n'}`, 'utf8');
      if (!opt.split || splitDone) return write(res, bytes);
      splitDone = true;
      const half = Math.floor(bytes.length / 2); // may cut a multi-byte character: the client must decode as a stream
      await write(res, bytes.subarray(0, half));
      await sleep(15);
      if (alive()) await write(res, bytes.subarray(half));
    };

    await write(res, ': keep-alive\n\n');
    await frame(chunk({ role: 'assistant', content: '' }));
    for (const [i, piece] of chunkText(reasoning, size).entries()) {
      if (i > 0) await sleep(delay);
      await frame(chunk({ content: null, reasoning_content: piece }));
    }
    for (const [i, piece] of deltas.entries()) {
      if (i >= limit) break;
      if (i > 0 || reasoning) await sleep(delay);
      await frame(chunk(reasoning ? { content: piece, reasoning_content: null } : { content: piece }), { split: true });
    }
    if (!alive()) return;
    if (b.kind === 'truncate') return void res.end();
    if (b.kind === 'drop') return destroy();
    if (b.kind === 'error-frame') {
      const err = { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null };
      await frame(JSON.stringify({ error: err }));
      return void res.end();
    }
    if (b.kind === 'invalid-json') {
      await frame(chunk({ content: 'x' }).slice(0, 40)); // a cut-off JSON object, then the rest of a normal stream
      for (const piece of deltas.slice(b.afterDeltas)) await frame(chunk({ content: piece }));
    }
    await frame(chunk({}, b.kind === 'answer' ? (b.finishReason ?? 'stop') : 'stop'), { split: true, crlf: true });
    if (includeUsage) await frame(JSON.stringify({ ...head('chat.completion.chunk'), choices: [], usage }));
    await frame('[DONE]');
    if (alive()) res.end();
  }

  const port = await life.listen(server);

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
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
