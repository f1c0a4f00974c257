/**
 * Protocol-faithful fake of the Dify service API over real loopback HTTP with real SSE framing (node:http, so every
 * socket write is under our control). Protocol: docs/providers.md §1 and §7; payloads in ./dify-frames.ts.
 * Routes: `POST /v1/chat-messages` (chat/agent/chatflow apps), `POST /v1/workflows/run`, `POST /v1/files/upload`,
 * `DELETE /v1/conversations/:id`, `POST /v1/chat-messages/:task_id/stop`.
 *
 * Stream shape: `event: ping` (no data) → [agent_thought… | workflow_started, node_*] → deltas (the first one is
 * written in two socket writes 15 ms apart, split mid-bytes) → [node_finished, workflow_finished | agent_thought]
 * → [message_replace] → message_end (workflow run: text_chunk deltas → node_finished → workflow_finished).
 * Checks, in order: route (404 / 405) → `Authorization: Bearer <apiKey>` (401) → body (400 invalid_param) →
 * conversation_id (400 when not a uuid; 404 when never issued for this same user, expired or deleted). Then one
 * behaviour is consumed. A conversation is issued / a turn appended when the request is accepted (before any
 * delay), for every behaviour that answers HTTP 200 (so an error-event stream still creates the conversation, as in
 * Dify), never for `status`. Units: delays milliseconds, `receivedAt`/`at` epoch ms, sizes bytes.
 *
 * Uploads (`POST /v1/files/upload`, multipart `file` + `user`, answered 201 like Dify): 400 no_file_uploaded /
 * too_many_files / invalid_param (no user), 413 file_too_large above `maxUploadBytes`, 415 unsupported_file_type for
 * a non-image when `imagesOnly`; scripted failures first (`scriptUploads`). An upload is usable only by its `user`:
 * a chat or workflow naming an unknown id, or another user's, gets 400 invalid_param — in `files` and in file
 * objects inside workflow `inputs` alike.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  blockingChat, blockingWorkflow, difyError, isObj, nonEmpty, nowS, parseJson, planChat, planWorkflow, sendJson, sendStatus, UUID_RE, write,
  type ChatCtx, type FakeDifyBehavior, type FakeDifyConversation, type FakeDifyOptions, type FakeDifyRequest, type FakeDifyStreamOptions,
  type FakeDifyUpload, type Json, type MultipartForm, type PlannedFrame, type WorkflowCtx,
} from './dify-frames.js';
import { createFakeLifecycle } from './fake-lifecycle.js';

export {
  THOUGHT_MARKER, type FakeDifyBehavior, type FakeDifyConversation, type FakeDifyOptions, type FakeDifyRequest, type FakeDifyStreamOptions,
  type FakeDifyTurn, type FakeDifyUpload,
} from './dify-frames.js';

/** Options of {@link startFakeDify}: Dify's own plus the upload type check. */
export interface FakeDifyStartOptions extends FakeDifyOptions {
  /** Answer 415 unsupported_file_type to an upload that is not an image (by MIME type or extension). Default false. */
  imagesOnly?: boolean;
}

/** What the fake does with one upload instead of accepting it (see `scriptUploads`). */
export type FakeDifyUploadBehavior =
  /** That HTTP status with a Dify envelope (`code`/`message` default from the status, e.g. 500). */
  | { kind: 'status'; status: number; code?: string; message?: string }
  /** No answer at all until the client goes away. */
  | { kind: 'hang' };

/** File extensions Dify counts as images (its IMAGE_EXTENSIONS). */
const IMAGE_EXTENSIONS = new Set(['jpg', 'jpeg', 'png', 'webp', 'gif', 'svg']);

/** A running fake; see {@link startFakeDify}. */
export interface FakeDify {
  /** e.g. `http://127.0.0.1:PORT/v1` — the adapter appends `/chat-messages`, `/workflows/run`, … */
  baseUrl: string;
  requests: FakeDifyRequest[];
  uploads: FakeDifyUpload[];
  /** Stop calls, in order (`at` epoch ms). A stop by the stream's own user ends that stream early with message_end. */
  stops: Array<{ taskId: string; user: string; at: number }>;
  /** Queues behaviours, consumed one per accepted chat-messages / workflows-run request, in order. */
  script(...behaviors: FakeDifyBehavior[]): void;
  /** Behaviour used when the queue is empty; initially `{kind:'answer'}`. */
  setDefault(b: FakeDifyBehavior): void;
  /** Queues upload failures, consumed one per authenticated `/files/upload` request before any other check. */
  scriptUploads(...behaviors: FakeDifyUploadBehavior[]): void;
  /** Resolves once `n` requests were recorded with their bodies read; rejects after `timeoutMs` (default 2000). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** The conversation with this id (any user), or undefined if never issued. */
  conversation(id: string): FakeDifyConversation | undefined;
  /** Conversations issued for `user`, oldest first. */
  conversationsOf(user: string): FakeDifyConversation[];
  /** Makes an issued id answer 404 "Conversation Not Exists." from now on; throws if the fake never issued it. */
  expireConversation(id: string): void;
  /** Stops listening, destroys every open socket and cancels every timer. */
  close(): Promise<void>;
}

type Route = 'chat' | 'workflow' | 'upload' | 'delete' | 'stop';
const ROUTES: Array<[string, RegExp, Route]> = [
  ['POST', /^\/v1\/chat-messages$/, 'chat'],
  ['POST', /^\/v1\/workflows\/run$/, 'workflow'],
  ['POST', /^\/v1\/files\/upload$/, 'upload'],
  ['DELETE', /^\/v1\/conversations\/([^/]+)$/, 'delete'],
  ['POST', /^\/v1\/chat-messages\/([^/]+)\/stop$/, 'stop'],
];
const PROVIDER_ERROR = '[openai] Server Unavailable Error, The server had an error while processing your request.';
const NO_CONVERSATION = (): Json => difyError(404, 'not_found', 'Conversation Not Exists.');

/** Starts the fake on 127.0.0.1 (random port). */
export async function startFakeDify(opts: FakeDifyStartOptions): Promise<FakeDify> {
  const maxUpload = opts.maxUploadBytes ?? 15 * 1024 * 1024;
  const uploadQueue: FakeDifyUploadBehavior[] = [];
  const requests: FakeDifyRequest[] = [];
  const queue: FakeDifyBehavior[] = [];
  let fallback: FakeDifyBehavior = { kind: 'answer' };
  const conversations = new Map<string, FakeDifyConversation>();
  const uploads: FakeDifyUpload[] = [];
  const stops: FakeDify['stops'] = [];
  const liveTasks = new Map<string, { user: string; stopped: boolean }>();
  const life = createFakeLifecycle('dify', requests);
  const { sleep } = life;

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const rec: FakeDifyRequest = { method: req.method ?? '', path, headers: { ...req.headers }, body: undefined, receivedAt: Date.now(), closedByClient: false };
    life.serve(rec, res, (destroy) => handle(req, res, rec, destroy), () => sendJson(res, 500, difyError(500)));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, rec: FakeDifyRequest, destroy: () => void): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts);
    const ctype = String(req.headers['content-type'] ?? '');
    const form = /^multipart\/form-data/i.test(ctype) ? await readForm(raw, ctype) : null;
    rec.body = form ? { fields: form.fields, files: form.files.map(({ data, ...f }) => ({ ...f, size: data.length })) } : parseJson(raw.toString('utf8'));
    life.received(rec);

    const hit = ROUTES.find(([, re]) => re.test(rec.path));
    if (!hit) return sendJson(res, 404, difyError(404));
    if (hit[0] !== rec.method) return sendJson(res, 405, difyError(405));
    const auth = req.headers.authorization;
    if (!auth?.startsWith('Bearer ')) return sendJson(res, 401, difyError(401, 'unauthorized', "Authorization header must be provided and start with 'Bearer'"));
    if (auth !== `Bearer ${opts.apiKey}`) return sendJson(res, 401, difyError(401));
    if (hit[2] === 'upload') {
      const scripted = uploadQueue.shift();
      if (scripted?.kind === 'hang') return; // the 'close' listener records the client going away
      if (scripted) return sendJson(res, scripted.status, difyError(scripted.status, scripted.code, scripted.message));
      return upload(res, form);
    }
    const body: unknown = rec.body;
    const bad = (message: string): void => sendJson(res, 400, difyError(400, 'invalid_param', message));
    if (!isObj(body)) return sendJson(res, 400, difyError(400, 'bad_request', 'The browser (or proxy) sent a request that this server could not understand.'));
    if (!nonEmpty(body.user)) return bad('user is required');
    const user = body.user;
    const param = decodeURIComponent(hit[1].exec(rec.path)?.[1] ?? '');
    if (hit[2] === 'stop') {
      stops.push({ taskId: param, user, at: Date.now() });
      const task = liveTasks.get(param);
      if (task?.user === user) task.stopped = true;
      return sendJson(res, 200, { result: 'success' });
    }
    if (hit[2] === 'delete') {
      if (!UUID_RE.test(param)) return sendJson(res, 404, difyError(404));
      const conv = conversations.get(param);
      if (!conv || conv.user !== user || conv.expired || conv.deleted) return sendJson(res, 404, NO_CONVERSATION());
      conv.deleted = true;
      return sendJson(res, 200, { result: 'success' });
    }
    if (!isObj(body.inputs)) return bad('inputs is required and must be an object');
    const inputs = body.inputs;
    const mode = body.response_mode ?? 'blocking'; // Dify: anything but "streaming" blocks; we refuse other values
    if (mode !== 'streaming' && mode !== 'blocking') return bad('response_mode must be "streaming" or "blocking"');
    const filesErr = filesError(body.files, user, 'files') ?? inputFilesError(inputs, user);
    if (filesErr) return bad(filesErr);

    if (hit[2] === 'workflow') {
      const b = queue.shift() ?? fallback;
      if (b.kind === 'status') return sendStatus(res, b);
      const o: FakeDifyStreamOptions = b.kind === 'hang' ? {} : b;
      const status = b.kind === 'workflow' ? (b.status ?? 'succeeded') : 'succeeded';
      const text = o.text ?? `Workflow:${typeof inputs.query === 'string' ? inputs.query : ''}`;
      const w: WorkflowCtx = {
        taskId: randomUUID(), runId: randomUUID(), inputs, text, status, chunkSize: o.chunkSize ?? 4,
        outputs: (b.kind === 'workflow' ? b.outputs : undefined) ?? (status === 'failed' ? {} : { text }),
        error: status === 'failed' ? ((b.kind === 'workflow' ? b.error : undefined) ?? 'Node LLM run failed: [openai] Server Unavailable Error') : null,
      };
      if (mode === 'blocking') return blocking(res, b, blockingWorkflow(w), destroy);
      const errorFrame = (code?: string, message?: string): Json => ({ event: 'error', workflow_run_id: w.runId, task_id: w.taskId, status: 500, code: code ?? 'completion_request_error', message: message ?? PROVIDER_ERROR });
      return stream(res, b, planWorkflow(w), errorFrame, destroy);
    }

    if (!nonEmpty(body.query)) return bad('query is required');
    const query = body.query;
    let conv: FakeDifyConversation | undefined;
    const cid = body.conversation_id;
    if (cid !== undefined && cid !== null && cid !== '') {
      if (typeof cid !== 'string' || !UUID_RE.test(cid)) return bad('conversation_id is not a valid uuid');
      conv = conversations.get(cid);
      if (!conv || conv.user !== user || conv.expired || conv.deleted) return sendJson(res, 404, NO_CONVERSATION());
    }
    const b = queue.shift() ?? fallback;
    if (b.kind === 'status') return sendStatus(res, b);
    if (b.kind === 'workflow') return sendJson(res, 400, difyError(400, 'not_chat_app', 'Please check if your Chat app mode matches the right API route.'));
    const o: FakeDifyStreamOptions = b.kind === 'hang' ? {} : b;
    const variant = o.variant ?? 'chat';
    if (variant === 'agent' && mode === 'blocking') return bad('Agent Chat App does not support blocking mode');
    if (!conv) {
      conv = { id: randomUUID(), user, turns: [], expired: false, deleted: false };
      conversations.set(conv.id, conv);
    }
    const c: ChatCtx = {
      taskId: randomUUID(), messageId: randomUUID(), conversationId: conv.id, query, inputs, variant, chunkSize: o.chunkSize ?? 4,
      text: o.text ?? `Dify:${query}`, replaceWith: b.kind === 'answer' ? b.replaceWith : undefined,
    };
    const files = Array.isArray(body.files) ? (body.files as unknown[]) : [];
    conv.turns.push({ query, answer: c.replaceWith ?? c.text, messageId: c.messageId, taskId: c.taskId, kind: b.kind, inputs, files, at: Date.now() });
    if (mode === 'blocking') return blocking(res, b, blockingChat(c), destroy);
    const task = { user, stopped: false };
    liveTasks.set(c.taskId, task);
    const errorFrame = (code?: string, message?: string): Json => ({
      event: 'error', conversation_id: c.conversationId, message_id: c.messageId, created_at: nowS(), task_id: c.taskId,
      status: 500, code: code ?? 'completion_request_error', message: message ?? PROVIDER_ERROR,
    });
    try {
      await stream(res, b, planChat(c), errorFrame, destroy, task);
    } finally {
      liveTasks.delete(c.taskId);
    }
  }

  /** `files` of a chat/workflow request (`where` names it in the message): null when fine, else the 400 message. */
  function filesError(files: unknown, user: string, where: string): string | null {
    if (files === undefined || files === null) return null;
    if (!Array.isArray(files)) return `${where} must be a list`;
    for (const [i, f] of (files as unknown[]).entries()) {
      if (!isObj(f) || !nonEmpty(f.type)) return `${where}[${i}].type is required`;
      if (f.transfer_method === 'remote_url') {
        if (!nonEmpty(f.url)) return `${where}[${i}].url is required`;
      } else if (f.transfer_method === 'local_file') {
        if (!uploads.some((u) => u.id === f.upload_file_id && u.user === user)) return `${where}[${i}].upload_file_id: file not found for this user`;
      } else return `${where}[${i}].transfer_method must be remote_url or local_file`;
    }
    return null;
  }

  /** File inputs of a workflow run: an input that is a file object, or a list of them, is checked like `files`. */
  function inputFilesError(inputs: Json, user: string): string | null {
    const isFile = (v: unknown): boolean => isObj(v) && 'transfer_method' in v;
    for (const [key, v] of Object.entries(inputs)) {
      const list = Array.isArray(v) ? (v as unknown[]) : [v];
      if (!list.some(isFile)) continue;
      const err = filesError(list, user, `inputs.${key}`);
      if (err) return err;
    }
    return null;
  }

  function upload(res: ServerResponse, form: MultipartForm | null): void {
    const [file, ...more] = form?.files ?? [];
    if (!form || !file || file.field !== 'file') return sendJson(res, 400, difyError(400, 'no_file_uploaded', 'Please upload your file.'));
    if (more.length > 0) return sendJson(res, 400, difyError(400, 'too_many_files', 'Only one file is allowed.'));
    const user = form.fields.user;
    if (!nonEmpty(user)) return sendJson(res, 400, difyError(400, 'invalid_param', 'user is required'));
    if (file.data.length > maxUpload) return sendJson(res, 413, difyError(413, 'file_too_large', `File size exceeded. ${file.data.length} > ${maxUpload} bytes`));
    const extension = /\.([^.]+)$/.exec(file.filename)?.[1]?.toLowerCase() ?? '';
    if (opts.imagesOnly && (!file.contentType.startsWith('image/') || !IMAGE_EXTENSIONS.has(extension))) {
      return sendJson(res, 415, difyError(415, 'unsupported_file_type', 'File type not allowed.'));
    }
    const up: FakeDifyUpload = {
      id: randomUUID(), user, name: file.filename, size: file.data.length, extension,
      mimeType: file.contentType, data: file.data, at: Date.now(),
    };
    uploads.push(up);
    // Dify answers 201 Created here.
    sendJson(res, 201, { id: up.id, name: up.name, size: up.size, extension: up.extension, mime_type: up.mimeType, created_by: user, created_at: nowS() });
  }

  /** Blocking answers: JSON, or a failure mapped onto a plain HTTP response. */
  async function blocking(res: ServerResponse, b: FakeDifyBehavior, json: Json, destroy: () => void): Promise<void> {
    if (b.kind === 'hang' || b.kind === 'status') return; // hang: no headers at all, like a stuck upstream
    await sleep(b.firstByteDelayMs ?? 0);
    if (life.closing || res.destroyed) return;
    if (b.kind === 'error-event') return sendJson(res, 400, difyError(400, b.code ?? 'completion_request_error', b.message ?? PROVIDER_ERROR));
    if (b.kind === 'answer' || b.kind === 'workflow') return sendJson(res, 200, json);
    const full = JSON.stringify(json);
    res.writeHead(200, { 'content-type': 'application/json' });
    await write(res, full.slice(0, Math.floor(full.length / 2))); // truncate / drop / invalid-json: half a body
    return b.kind === 'drop' ? destroy() : void res.end();
  }

  /** Writes `event: ping` then the planned frames, applying the behaviour's failure after `afterDeltas` deltas. */
  async function stream(res: ServerResponse, b: FakeDifyBehavior, frames: PlannedFrame[], errorFrame: (code?: string, message?: string) => Json,
    destroy: () => void, task?: { stopped: boolean }): Promise<void> {
    const o: FakeDifyStreamOptions = b.kind === 'hang' || b.kind === 'status' ? {} : b;
    const alive = (): boolean => !life.closing && !res.destroyed;
    await sleep(o.firstByteDelayMs ?? 0);
    if (!alive()) return;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    if (b.kind === 'hang') return; // silence; the 'close' listener records the client going away

    const sep = o.crlf ? '\r\n\r\n' : '\n\n';
    /** One frame; `split`: two socket writes 15 ms apart, cut at the byte middle (may cut a UTF-8 character). */
    const send = async (frame: string, split = false): Promise<void> => {
      if (!alive()) return;
      const bytes = Buffer.from(frame + sep, 'utf8');
      if (!split) return write(res, bytes);
      const half = Math.floor(bytes.length / 2);
      await write(res, bytes.subarray(0, half));
      await sleep(15);
      if (alive()) await write(res, bytes.subarray(half));
    };
    await send('event: ping');
    const limit = 'afterDeltas' in b ? b.afterDeltas : Infinity;
    const first = frames.findIndex((f) => f.delta);
    const splitAt = first >= 0 ? first : frames.length - 1;
    let deltas = 0;
    let failed = false;
    for (const [i, f] of frames.entries()) {
      if (task?.stopped && i < frames.length - 1) continue; // stopped: straight to message_end
      await sleep(o.delayMs ?? 0);
      if (!alive()) return;
      if (!failed && deltas >= limit && (f.delta || f.post)) {
        failed = true;
        if (b.kind === 'truncate') return void res.end();
        if (b.kind === 'drop') return destroy();
        if (b.kind === 'error-event') {
          await send(`data: ${JSON.stringify(errorFrame(b.code, b.message))}`);
          return void (alive() && res.end());
        }
        if (b.kind === 'invalid-json') await send(`data: ${JSON.stringify(f.json).slice(0, 40)}`);
      }
      await send(`data: ${JSON.stringify(f.json)}`, i === splitAt);
      if (f.delta) deltas++;
    }
    if (alive()) res.end();
  }

  const port = await life.listen(server);

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    uploads,
    stops,
    script: (...behaviors) => void queue.push(...behaviors),
    setDefault: (b) => void (fallback = b),
    scriptUploads: (...behaviors) => void uploadQueue.push(...behaviors),
    waitForRequests: (n, timeoutMs) => life.waitForRequests(n, timeoutMs),
    conversation: (id) => conversations.get(id),
    conversationsOf: (user) => [...conversations.values()].filter((c) => c.user === user),
    expireConversation(id) {
      const conv = conversations.get(id);
      if (!conv) throw new Error(`fake dify: conversation ${id} was never issued`);
      conv.expired = true;
    },
    close: () => life.close(server),
  };
}

/**
 * multipart/form-data through the runtime's own spec-compliant parser (undici's `Response.formData`, what a real
 * server's parser would accept), as text fields and file parts with their bytes; null when malformed.
 */
async function readForm(raw: Buffer, ctype: string): Promise<MultipartForm | null> {
  try {
    const form = await new Response(raw, { headers: { 'content-type': ctype } }).formData();
    const out: MultipartForm = { fields: {}, files: [] };
    for (const [field, v] of form) {
      if (typeof v === 'string') out.fields[field] = v;
      else out.files.push({ field, filename: v.name, contentType: v.type || 'application/octet-stream', data: Buffer.from(await v.arrayBuffer()) });
    }
    return out;
  } catch {
    return null;
  }
}
