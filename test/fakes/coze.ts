/**
 * Protocol-faithful fake of the Coze open API (`api.coze.cn` / `api.coze.com`) over real loopback HTTP with real SSE
 * framing (node:http, so every socket write is under our control). Protocol: docs/providers.md §2 and §7.
 *
 * Envelope rules (checked in this order; all HTTP 200 + `{code, msg, detail:{logid}}` like Coze, every response
 * carries `x-tt-logid`): 4100 wrong/missing `Authorization: Bearer <token>` (any path); 4000 body not a JSON object,
 * `bot_id` not ours, `user_id` missing, `stream` not `true` (this fake has no polling path), `additional_messages`
 * not 1..100 well-formed items ending with a `user` turn, object_string content not a JSON array or naming a
 * `file_id` this fake never issued; 4200 "conversation not found" for a query `conversation_id` that was never
 * issued or was expired with `expireConversation` (the adapter's `conversation_expired` case); 4101 when it belongs
 * to another `user_id`. A `conversation_id` in the body (not the query) is ignored, as Coze does: a new one is issued.
 * Conversations from `/v1/conversation/create` have no owner until the first chat claims them. Unknown paths: 404.
 * object_string content must be a JSON array string of parts: `{type:"text", text}` (string) or
 * `{type:"image"|"file"|"audio", file_id|file_url}` with a `file_id` this fake issued (else 4000).
 * `POST /v1/files/upload` (multipart `file`, parsed by the runtime's own parser) answers `data: {id, bytes,
 * file_name, created_at}`; scripted failures first (`scriptUploads`); no `file` part: 4000.
 *
 * Stream shape (`event:`/`data:` with no space after the colon): chat.created → chat.in_progress → per answer
 * message: deltas (`reasoning_content` deltas first, on the first answer) → message.completed → a `verbose`
 * `generate_answer_finish` message → `follow_up` messages (text starts with `FOLLOWUP-SECRET`) → chat.completed with
 * usage → `done` (`data:"[DONE]"`). The first answer delta frame (with none: the chat.completed / failed /
 * requires_action / error frame) goes out in two socket writes, cut mid-bytes.
 * User turns are stored when a chat is accepted, assistant answers once completed (unless `auto_save_history:false`).
 * Units: delays milliseconds, `receivedAt` epoch ms, `chunkSize` Unicode code points, `created_at` unix seconds,
 * token counts are character counts (input = every stored turn of the conversation).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createFakeLifecycle, type ScriptedFake, writeChunk as write } from './fake-lifecycle.js';

/** What the fake does with one accepted `/v3/chat` request. `afterDeltas` counts answer deltas across messages; when
 *  the answers have fewer, the failure comes after the last answer's message.completed. */
export type FakeCozeBehavior =
  /** Normal stream. `text` defaults to `Coze:` + the last user turn's text; `answers` sends several separate answer
   *  messages instead; `reasoning` as `reasoning_content` deltas; `followUps` replaces the default suggestions;
   *  `noDone` omits the final `done` event; `crlf` frames every line with CRLF; `chunkSize` default 4; `delayMs`
   *  between deltas; `firstByteDelayMs` before the headers. */
  | { kind: 'answer'; text?: string; answers?: string[]; reasoning?: string; followUps?: string[]; noDone?: boolean; chunkSize?: number; delayMs?: number; firstByteDelayMs?: number; crlf?: boolean }
  /** HTTP 200 `application/json` `{code, msg}` instead of SSE. */
  | { kind: 'envelope'; code: number; msg: string }
  /** That HTTP status with `body` (JSON unless a string; default `{code, msg}`). */
  | { kind: 'status'; status: number; body?: unknown }
  /** Deltas, then `conversation.chat.failed` with `last_error` (default 5000 / "internal error"), then `done`. */
  | { kind: 'chat-failed'; afterDeltas: number; code?: number; msg?: string }
  /** A `function_call` message, then `conversation.chat.requires_action` (submit_tool_outputs), then `done`. */
  | { kind: 'requires-action' }
  /** Deltas, then `event:error` with `data:{}` (or `{code,msg}` when `code` is given); the body ends, no `done`. */
  | { kind: 'error-event'; afterDeltas: number; code?: number; msg?: string }
  /** Deltas, then the body ends cleanly: no chat.completed, no done. */
  | { kind: 'truncate'; afterDeltas: number }
  /** Deltas, then the socket is destroyed. */
  | { kind: 'drop'; afterDeltas: number }
  /** 200 + SSE headers, then silence until the client goes away. */
  | { kind: 'hang' }
  /** Deltas, then one delta frame of cut-off JSON, then the rest of a normal stream. */
  | { kind: 'invalid-json'; afterDeltas: number };

/** What the fake does with one authenticated `/v1/files/upload` request instead of accepting it. */
export type FakeCozeUploadBehavior =
  /** HTTP 200 `{code, msg}`. */
  | { kind: 'envelope'; code: number; msg: string }
  /** That HTTP status with `{code, msg}` (code 5000 for 5xx, else 4000). */
  | { kind: 'status'; status: number };

/** One recorded HTTP request (every request, rejected ones too, in arrival order). */
export interface FakeCozeRequest {
  /** e.g. `POST`, `/v3/chat`, and the query parameters (`conversation_id` lives there). */
  method: string;
  path: string;
  query: Record<string, string>;
  /** Lower-cased Node request headers. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; for multipart `{fields, files:[{name, fileName, contentType, data}]}`; else the raw text. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Arrival time, epoch milliseconds. */
  receivedAt: number;
  /** True once the client closed the connection before the server finished its response. */
  closedByClient: boolean;
}

export type FakeCozeTurn = { role: 'user' | 'assistant'; content: string; content_type: string };
/** A multipart file part; `data` is the raw bytes. */
export type FakeCozePart = { name: string; fileName: string; contentType: string; data: Buffer };
/** An uploaded file (`/v1/files/upload`). */
export type FakeCozeFile = { id: string; fileName: string; contentType: string; data: Buffer };

export interface FakeCozeConversation {
  id: string;
  botId: string;
  /** The `user_id` of the first chat in it (null for a `/v1/conversation/create` one not used yet). */
  userId: string | null;
  /** Changes on every `/clear`. */
  sectionId: string;
  /** Stored turns of the current section, oldest first. */
  turns: FakeCozeTurn[];
}

/** A running fake; see {@link startFakeCoze}. */
export interface FakeCoze extends ScriptedFake<FakeCozeRequest, FakeCozeBehavior> {
  /** `http://127.0.0.1:PORT`, no trailing slash (the adapter appends `/v3/chat`). */
  baseUrl: string;
  conversations: Map<string, FakeCozeConversation>;
  /** Uploads by file id. */
  files: Map<string, FakeCozeFile>;
  /** Queues upload failures, consumed one per authenticated `/v1/files/upload` request, in order. */
  scriptUploads(...behaviors: FakeCozeUploadBehavior[]): void;
  /** Forgets an issued conversation id: later chats naming it get `{code:4200, msg:"conversation not found"}`. */
  expireConversation(id: string): void;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
let seq = 0;
/** A 19-digit numeric id, like Coze's. */
const numId = (): string => `7${String(Date.now()).slice(-9)}${String(randomInt(1e6)).padStart(6, '0')}${String(seq++ % 1000).padStart(3, '0')}`;
const logId = (): string => new Date().toISOString().replace(/\D/g, '').slice(0, 14) + randomBytes(10).toString('hex').toUpperCase();
/** The default `follow_up` texts: suggested questions that must never reach the customer. */
export const FOLLOWUPS = ['FOLLOWUP-SECRET 还有什么可以帮您？', 'FOLLOWUP-SECRET 营业时间是几点？'];

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text; // '' when empty
  }
}

function chunkText(text: string, size: number): string[] {
  const cps = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < cps.length; i += Math.max(1, size)) out.push(cps.slice(i, i + Math.max(1, size)).join(''));
  return out;
}

/** Why an object_string `content` is refused (4000), or null when it is a well-formed parts array whose file ids
 *  are all in `files`. */
function objectStringError(content: string, files: ReadonlyMap<string, unknown>): string | null {
  let parts: unknown;
  try {
    parts = JSON.parse(content);
  } catch {
    return 'object_string content must be a JSON array string';
  }
  if (!Array.isArray(parts) || parts.length === 0) return 'object_string content must be a non-empty JSON array string';
  for (const [i, p] of (parts as unknown[]).entries()) {
    if (!isObj(p)) return `object_string item ${i} is not an object`;
    if (p.type === 'text') {
      if (typeof p.text !== 'string') return `object_string item ${i}: text is required`;
    } else if (p.type === 'image' || p.type === 'file' || p.type === 'audio') {
      if (p.file_id === undefined && typeof p.file_url !== 'string') return `object_string item ${i}: file_id or file_url is required`;
      if (p.file_id !== undefined && !files.has(String(p.file_id))) return `file_id ${String(p.file_id)} not found`;
    } else return `object_string item ${i}: unknown type ${JSON.stringify(p.type)}`;
  }
  return null;
}

/** The user-visible text of a turn: `text` as is, object_string as its text parts; null when malformed. */
function turnText(m: Json): string | null {
  if (m.content_type !== 'object_string') return String(m.content);
  try {
    const parts: unknown = JSON.parse(String(m.content));
    return Array.isArray(parts) ? parts.map((p) => (isObj(p) && p.type === 'text' ? String(p.text ?? '') : '')).join('') : null;
  } catch {
    return null;
  }
}

/** Starts the fake on 127.0.0.1 (random port), accepting `Authorization: Bearer <token>` and bot `botId`. */
export async function startFakeCoze(opts: { token: string; botId: string }): Promise<FakeCoze> {
  const requests: FakeCozeRequest[] = [];
  const conversations = new Map<string, FakeCozeConversation>();
  const files = new Map<string, FakeCozeFile>();
  const queue: FakeCozeBehavior[] = [];
  const uploadQueue: FakeCozeUploadBehavior[] = [];
  let fallback: FakeCozeBehavior = { kind: 'answer' };
  const life = createFakeLifecycle('coze', requests);
  const { sleep } = life;
  const newConversation = (userId: string | null): FakeCozeConversation => {
    const c = { id: numId(), botId: opts.botId, userId, sectionId: numId(), turns: [] };
    return (conversations.set(c.id, c), c);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const rec: FakeCozeRequest = { method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, body: undefined, receivedAt: Date.now(), closedByClient: false };
    res.setHeader('x-tt-logid', logId());
    life.serve(rec, res, (destroy) => handle(req, res, rec, destroy), () => sendJson(res, 500, { code: 5000, msg: 'internal error' }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, rec: FakeCozeRequest, destroy: () => void): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts);
    const ctype = req.headers['content-type'] ?? '';
    rec.body = ctype.startsWith('multipart/form-data') ? await parseMultipart(raw, ctype) : parseJson(raw.toString('utf8'));
    life.received(rec);

    const env = (code: number, msg: string, data?: unknown): void =>
      sendJson(res, 200, { code, msg, ...(data === undefined ? {} : { data }), detail: { logid: res.getHeader('x-tt-logid') } });
    if (req.headers.authorization !== `Bearer ${opts.token}`) return env(4100, 'authentication failed');
    const body: unknown = rec.body;
    const post = req.method === 'POST';
    const clear = /^\/v1\/conversations\/([^/]+)\/clear$/.exec(rec.path);
    if (post && rec.path === '/v1/conversation/create') {
      if (!isObj(body) || body.bot_id !== opts.botId) return env(4000, 'invalid bot_id');
      const c = newConversation(null);
      if (Array.isArray(body.messages)) for (const m of body.messages as Json[]) c.turns.push({ role: m.role === 'assistant' ? 'assistant' : 'user', content: String(m.content), content_type: String(m.content_type ?? 'text') });
      return env(0, '', { id: c.id, created_at: Math.floor(Date.now() / 1000), meta_data: body.meta_data ?? {}, last_section_id: c.sectionId });
    }
    if (post && clear) {
      const c = conversations.get(clear[1] ?? '');
      if (!c) return env(4200, 'conversation not found');
      c.sectionId = numId();
      c.turns = [];
      return env(0, '', { id: c.sectionId, conversation_id: c.id });
    }
    if (post && rec.path === '/v1/files/upload') {
      const scripted = uploadQueue.shift();
      if (scripted?.kind === 'envelope') return env(scripted.code, scripted.msg);
      if (scripted) return sendJson(res, scripted.status, { code: scripted.status >= 500 ? 5000 : 4000, msg: `fake coze HTTP ${scripted.status}` });
      const f = isObj(body) && Array.isArray(body.files) ? (body.files as FakeCozePart[]).find((p) => p.name === 'file') : undefined;
      if (!f) return env(4000, 'file is required');
      const file = { id: numId(), fileName: f.fileName, contentType: f.contentType, data: f.data };
      files.set(file.id, file);
      return env(0, '', { id: file.id, bytes: file.data.length, file_name: file.fileName, created_at: Math.floor(Date.now() / 1000) });
    }
    if (!post || rec.path !== '/v3/chat') return sendJson(res, 404, { code: 4000, msg: `no route for ${req.method} ${rec.path}` });

    if (!isObj(body)) return env(4000, 'invalid request body');
    if (body.bot_id !== opts.botId) return env(4000, 'invalid bot_id');
    if (typeof body.user_id !== 'string' || body.user_id === '') return env(4000, 'user_id is required');
    if (body.stream !== true) return env(4000, 'fake coze: only stream:true is supported');
    const msgs = body.additional_messages;
    if (!Array.isArray(msgs) || msgs.length === 0 || msgs.length > 100) return env(4000, 'additional_messages must hold 1..100 messages');
    for (const m of msgs as unknown[]) {
      if (!isObj(m) || (m.role !== 'user' && m.role !== 'assistant') || typeof m.content !== 'string' || (m.content_type !== 'text' && m.content_type !== 'object_string')) return env(4000, 'invalid message in additional_messages');
      const bad = m.content_type === 'object_string' ? objectStringError(m.content, files) : null;
      if (bad) return env(4000, bad);
    }
    const last = msgs.at(-1) as Json;
    if (last.role !== 'user') return env(4000, 'the last of additional_messages must be a user message');
    const convId = rec.query.conversation_id;
    let conv: FakeCozeConversation | undefined;
    if (convId !== undefined) {
      conv = conversations.get(convId);
      if (!conv || conv.botId !== opts.botId) return env(4200, 'conversation not found');
      if (conv.userId !== null && conv.userId !== body.user_id) return env(4101, 'no permission to access this conversation');
      conv.userId = body.user_id;
    } else conv = newConversation(body.user_id);
    const save = body.auto_save_history !== false;
    if (save) for (const m of msgs as Json[]) conv.turns.push({ role: m.role as 'user' | 'assistant', content: String(m.content), content_type: String(m.content_type) });

    const b = queue.shift() ?? fallback;
    if (b.kind === 'envelope') return env(b.code, b.msg);
    if (b.kind === 'status') {
      if (typeof b.body === 'string') return void res.writeHead(b.status, { 'content-type': 'text/plain; charset=utf-8' }).end(b.body);
      const code = b.status === 401 ? 4100 : b.status === 429 ? 4013 : b.status >= 500 ? 5000 : 4000;
      return sendJson(res, b.status, b.body ?? { code, msg: `fake coze HTTP ${b.status}` });
    }
    const a = b.kind === 'answer' ? b : undefined;
    await sleep(a?.firstByteDelayMs ?? 0);
    const alive = (): boolean => !life.closing && !res.destroyed;
    if (!alive()) return;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    if (b.kind === 'hang') return; // silence; the 'close' listener records the client going away

    const answers = a?.answers ?? [a?.text ?? `Coze:${turnText(last) ?? ''}`];
    const reasoning = a?.reasoning ?? '';
    const size = a?.chunkSize ?? 4;
    const eol = a?.crlf ? '\r\n' : '\n';
    const chatId = numId();
    const createdAt = Math.floor(Date.now() / 1000);
    const pool: Json[] = save ? conv.turns.map((t) => ({ ...t })) : (msgs as Json[]);
    const inputCount = pool.reduce((n, m) => n + Array.from(turnText(m) ?? '').length, 0);
    const outputCount = answers.reduce((n, t) => n + Array.from(t).length, Array.from(reasoning).length);
    const ids = { conversation_id: conv.id, bot_id: opts.botId, section_id: conv.sectionId };
    const chat = (status: string, extra: Json = {}): string =>
      JSON.stringify({ id: chatId, ...ids, created_at: createdAt, last_error: { code: 0, msg: '' }, status, usage: { token_count: 0, output_count: 0, input_count: 0 }, ...extra });
    const message = (id: string, type: string, content: string, extra: Json = {}): string =>
      JSON.stringify({ id, ...ids, chat_id: chatId, role: 'assistant', type, content, content_type: 'text', ...extra });
    let splitDone = false;
    /** Writes one `event:`/`data:` frame; the first `split` frame goes out in two writes, cut mid-bytes. */
    const frame = async (event: string, data: string, split = false): Promise<void> => {
      if (!alive()) return;
      const bytes = Buffer.from(`event:${event}${eol}data:${data}${eol}${eol}`, 'utf8');
      if (!split || splitDone) return write(res, bytes);
      splitDone = true;
      const half = Math.floor(bytes.length / 2);
      await write(res, bytes.subarray(0, half));
      await sleep(15);
      if (alive()) await write(res, bytes.subarray(half));
    };

    await frame('conversation.chat.created', chat('created'));
    await frame('conversation.chat.in_progress', chat('in_progress'));
    if (b.kind === 'requires-action') {
      const call = { id: `call_${numId()}`, type: 'function', function: { name: 'get_weather', arguments: '{"city":"北京"}' } };
      await frame('conversation.message.completed', message(numId(), 'function_call', JSON.stringify({ name: 'get_weather', arguments: { city: '北京' }, plugin_id: numId() })));
      await frame('conversation.chat.requires_action', chat('requires_action', { required_action: { type: 'submit_tool_outputs', submit_tool_outputs: { tool_calls: [call] } } }), true);
      await frame('done', '"[DONE]"');
      return void (alive() && res.end());
    }
    let limit = 'afterDeltas' in b ? b.afterDeltas : Infinity;
    let sent = 0;
    const broken = (): Promise<void> => ((limit = Infinity), frame('conversation.message.delta', message(numId(), 'answer', 'x').slice(0, 40)));
    outer: for (const [n, text] of answers.entries()) {
      const msgId = numId();
      const think = n === 0 ? chunkText(reasoning, size) : [];
      for (const piece of think) await frame('conversation.message.delta', message(msgId, 'answer', '', { reasoning_content: piece }));
      for (const piece of chunkText(text, size)) {
        if (sent === limit) {
          if (b.kind !== 'invalid-json') break outer;
          await broken();
        }
        if (sent > 0) await sleep(a?.delayMs ?? 0);
        await frame('conversation.message.delta', message(msgId, 'answer', piece), true);
        sent++;
      }
      await frame('conversation.message.completed', message(msgId, 'answer', text, think.length ? { reasoning_content: reasoning } : {}));
      if (save && alive()) conv.turns.push({ role: 'assistant', content: text, content_type: 'text' });
    }
    if (b.kind === 'invalid-json' && limit !== Infinity) await broken();
    const failed = limit !== Infinity;
    if (!alive()) return;
    if (failed && b.kind === 'truncate') return void res.end();
    if (failed && b.kind === 'drop') return destroy();
    if (failed && b.kind === 'error-event') {
      await frame('error', JSON.stringify(b.code === undefined ? {} : { code: b.code, msg: b.msg ?? 'internal error' }), true);
      return void (alive() && res.end());
    }
    if (failed && b.kind === 'chat-failed') {
      await frame('conversation.chat.failed', chat('failed', { completed_at: Math.floor(Date.now() / 1000), last_error: { code: b.code ?? 5000, msg: b.msg ?? 'internal error' } }), true);
      await frame('done', '"[DONE]"');
      return void (alive() && res.end());
    }
    const finish = { msg_type: 'generate_answer_finish', data: '', from_module: null, from_unit: null };
    await frame('conversation.message.completed', message(numId(), 'verbose', JSON.stringify(finish)));
    for (const q of a?.followUps ?? FOLLOWUPS) await frame('conversation.message.completed', message(numId(), 'follow_up', q));
    const usage = { token_count: inputCount + outputCount, output_count: outputCount, input_count: inputCount };
    await frame('conversation.chat.completed', chat('completed', { completed_at: Math.floor(Date.now() / 1000), usage }), true);
    if (!a?.noDone) await frame('done', '"[DONE]"');
    if (alive()) res.end();
  }

  const port = await life.listen(server);

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    conversations,
    files,
    script: (...behaviors) => void queue.push(...behaviors),
    setDefault: (b) => void (fallback = b),
    scriptUploads: (...behaviors) => void uploadQueue.push(...behaviors),
    expireConversation: (id) => void conversations.delete(id),
    waitForRequests: (n, timeoutMs) => life.waitForRequests(n, timeoutMs),
    close: () => life.close(server),
  };
}

/** multipart/form-data via the runtime's own parser (undici): text fields by name, file parts in order. */
async function parseMultipart(raw: Buffer, ctype: string): Promise<{ fields: Record<string, string>; files: FakeCozePart[] } | string> {
  try {
    const form = await new Response(raw, { headers: { 'content-type': ctype } }).formData();
    const out = { fields: {} as Record<string, string>, files: [] as FakeCozePart[] };
    for (const [name, v] of form) {
      if (typeof v === 'string') out.fields[name] = v;
      else out.files.push({ name, fileName: v.name, contentType: v.type || 'application/octet-stream', data: Buffer.from(await v.arrayBuffer()) });
    }
    return out;
  } catch {
    return raw.toString('utf8');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
