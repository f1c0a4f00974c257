/**
 * Behaviour and record types, Dify-shaped JSON payloads (SSE frames, blocking answers, error envelopes), a small
 * multipart parser and tiny response writers for the fake Dify server in ./dify.ts. Protocol:
 * docs/providers.md §1 and §7.
 *
 * Units: `created_at`/`finished_at` unix SECONDS (like Dify), `elapsed_time`/`latency` seconds, delays
 * milliseconds, `chunkSize` Unicode code points, token counts are code-point counts.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';

export type Json = Record<string, unknown>;

/** Text put in every `agent_thought` `thought`/`observation`; a correct adapter never lets it reach a user. */
export const THOUGHT_MARKER = 'THOUGHT-SECRET';

/** Options shared by every streamed behaviour (ignored by `hang`/`status`). */
export interface FakeDifyStreamOptions {
  /** Chat app shape for `/chat-messages`: `message` deltas (chat, default), `agent_message` + `agent_thought`
   *  (agent; blocking is refused like Dify), or `message` deltas inside `workflow_*`/`node_*` frames (chatflow).
   *  Ignored by `/workflows/run`. */
  variant?: 'chat' | 'agent' | 'chatflow';
  /** Answer text; default `Dify:` + query (chat) or `Workflow:` + inputs.query (workflow run). */
  text?: string;
  /** Code points per delta; default 4. */
  chunkSize?: number;
  /** Pause before every frame after the headers, milliseconds; default 0. */
  delayMs?: number;
  /** Pause before the response headers, milliseconds; default 0. */
  firstByteDelayMs?: number;
  /** Separate frames with `\r\n\r\n` (and lines with `\r\n`) instead of `\n\n`. */
  crlf?: boolean;
}

/** What the fake does with one accepted `/chat-messages` or `/workflows/run` request. "Deltas" are `message` /
 *  `agent_message` frames (chat) or `text_chunk` frames (workflow run). */
export type FakeDifyBehavior =
  /** Normal answer. `replaceWith`: a `message_replace` frame after the deltas (moderation; the final answer). */
  | ({ kind: 'answer'; replaceWith?: string } & FakeDifyStreamOptions)
  /** `/workflows/run` answer ending in `workflow_finished` with `status` (default succeeded) and `outputs`
   *  (default `{text}` when succeeded, `{}` when failed), `error` when failed. On `/chat-messages`: 400 not_chat_app
   *  (a workflow app's key used on the chat route). */
  | ({ kind: 'workflow'; status?: 'succeeded' | 'failed'; outputs?: Json; error?: string } & FakeDifyStreamOptions)
  /** That HTTP status with `body` (JSON unless a string); default a Dify envelope `{code, message, status}`
   *  from `code`/`message` or from the status (400 invalid_param, 401 unauthorized, 429 too_many_requests, …). */
  | { kind: 'status'; status: number; body?: unknown; code?: string; message?: string }
  /** `afterDeltas` deltas, then `{event:"error", status:500, code, message}` (default completion_request_error)
   *  and the body ends. Blocking: HTTP 400 with that code. */
  | ({ kind: 'error-event'; afterDeltas: number; code?: string; message?: string } & FakeDifyStreamOptions)
  /** `afterDeltas` deltas, then the body ends cleanly without the terminal frame. Blocking: half a JSON body. */
  | ({ kind: 'truncate'; afterDeltas: number } & FakeDifyStreamOptions)
  /** `afterDeltas` deltas, then the socket is destroyed. Blocking: half a JSON body, then destroyed. */
  | ({ kind: 'drop'; afterDeltas: number } & FakeDifyStreamOptions)
  /** `afterDeltas` deltas, then one `data:` frame of cut-off JSON, then the rest of a normal stream. */
  | ({ kind: 'invalid-json'; afterDeltas: number } & FakeDifyStreamOptions)
  /** Streaming: 200 + SSE headers, then silence until the client goes away. Blocking: no response at all. */
  | { kind: 'hang' };

/** One frame of a planned stream. `delta`: counts for `afterDeltas`; `post`: after the last delta. */
export interface PlannedFrame {
  json: Json;
  delta?: boolean;
  post?: boolean;
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';
export const nowS = (): number => Math.floor(Date.now() / 1000);
const cps = (s: string): number => Array.from(s).length;

/** Splits `text` into pieces of `size` code points (so no surrogate pair or CJK character is ever cut). */
export function chunkText(text: string, size: number): string[] {
  const all = Array.from(text);
  const n = Math.max(1, size);
  const out: string[] = [];
  for (let i = 0; i < all.length; i += n) out.push(all.slice(i, i + n).join(''));
  return out;
}

const DEFAULT_ERRORS: Record<number, [string, string]> = {
  400: ['invalid_param', 'Invalid parameter.'],
  401: ['unauthorized', 'Access token is invalid'],
  403: ['forbidden', 'You do not have permission to access this resource.'],
  404: ['not_found', 'The requested URL was not found on the server.'],
  405: ['method_not_allowed', 'The method is not allowed for the requested URL.'],
  413: ['file_too_large', 'File size exceeded.'],
  415: ['unsupported_file_type', 'File type not allowed.'],
  429: ['too_many_requests', 'Too many requests. Please try again later.'],
  500: ['internal_server_error', 'The server encountered an internal error and was unable to complete your request.'],
  503: ['service_unavailable', 'The server is temporarily unable to service your request.'],
};

/** Dify's HTTP error envelope `{code, message, status}`; code/message default from the status. */
export function difyError(status: number, code?: string, message?: string): Json {
  const [c, m] = DEFAULT_ERRORS[status] ?? [`http_${status}`, `Fake error with status ${status}`];
  return { code: code ?? c, message: message ?? m, status };
}

/** `metadata.usage` like Dify's (prices as decimal strings). */
export function usageOf(prompt: string, answer: string): Json {
  const p = cps(prompt);
  const c = cps(answer);
  const [pp, cc] = [p * 0.15e-6, c * 0.6e-6];
  return {
    prompt_tokens: p, prompt_unit_price: '0.15', prompt_price_unit: '0.000001', prompt_price: pp.toFixed(7),
    completion_tokens: c, completion_unit_price: '0.6', completion_price_unit: '0.000001', completion_price: cc.toFixed(7),
    total_tokens: p + c, total_price: (pp + cc).toFixed(7), currency: 'USD', latency: 0.42,
  };
}

/** Everything a chat-messages answer is built from. `text` streams as deltas; the final answer is
 *  `replaceWith ?? text`. */
export interface ChatCtx {
  taskId: string;
  messageId: string;
  conversationId: string;
  query: string;
  inputs: Json;
  text: string;
  replaceWith?: string;
  variant: 'chat' | 'agent' | 'chatflow';
  chunkSize: number;
}

const MODES = { chat: 'chat', agent: 'agent-chat', chatflow: 'advanced-chat' } as const;

/** The frames of a streamed chat answer (the `event: ping` frame excluded; the writer adds it first). */
export function planChat(c: ChatCtx): PlannedFrame[] {
  const created_at = nowS();
  const base = { conversation_id: c.conversationId, message_id: c.messageId, created_at, task_id: c.taskId };
  const final = c.replaceWith ?? c.text;
  const deltas = chunkText(c.text, c.chunkSize);
  const pre: PlannedFrame[] = [];
  const post: PlannedFrame[] = [];
  const body: PlannedFrame[] = deltas.map((answer) => ({
    delta: true,
    json: c.variant === 'agent'
      ? { event: 'agent_message', ...base, id: c.messageId, answer }
      : { event: 'message', ...base, id: c.messageId, answer, ...(c.variant === 'chatflow' ? { from_variable_selector: ['llm', 'text'] } : {}) },
  }));
  if (c.variant === 'agent') {
    const thought = (id: string, position: number, thought: string, observation: string, tool = ''): PlannedFrame => ({
      json: { event: 'agent_thought', ...base, id, position, thought, observation, tool, tool_labels: tool ? { [tool]: { en_US: 'Web search' } } : {},
        tool_input: tool ? JSON.stringify({ [tool]: { query: c.query } }) : '', message_files: [] },
    });
    const [t1, t2] = [randomUUID(), randomUUID()];
    pre.push(thought(t1, 1, `${THOUGHT_MARKER}: I should search for this.`, '', 'web_search'),
      thought(t1, 1, `${THOUGHT_MARKER}: I should search for this.`, `${THOUGHT_MARKER} observation: 3 results`, 'web_search'),
      thought(t2, 2, '', ''));
    body.splice(Math.ceil(body.length / 2), 0, thought(t2, 2, `${THOUGHT_MARKER} (partial)`, ''));
    post.push(thought(t2, 2, `${THOUGHT_MARKER} ${c.text}`, `${THOUGHT_MARKER} done`));
  } else if (c.variant === 'chatflow') {
    const runId = randomUUID();
    const wf = (event: string, data: Json): PlannedFrame => ({ json: { event, ...base, workflow_run_id: runId, data } });
    const node = (event: 'node_started' | 'node_finished', index: number, nodeId: string, type: string, outputs: Json = {}): PlannedFrame =>
      wf(event, { id: `${runId.slice(0, 8)}-${nodeId}`, node_id: nodeId, node_type: type, title: type.toUpperCase(), index, created_at,
        ...(event === 'node_finished' ? { outputs, status: 'succeeded', error: null, elapsed_time: 0.1, finished_at: created_at } : {}) });
    pre.push(wf('workflow_started', { id: runId, workflow_id: 'wf-fake-chatflow', sequence_number: 1, inputs: { ...c.inputs, 'sys.query': c.query }, created_at }),
      node('node_started', 1, 'start', 'start'), node('node_finished', 1, 'start', 'start', { 'sys.query': c.query }),
      node('node_started', 2, 'llm', 'llm'));
    post.push(node('node_finished', 2, 'llm', 'llm', { text: c.text }), node('node_started', 3, 'answer', 'answer'),
      node('node_finished', 3, 'answer', 'answer', { answer: c.text }),
      wf('workflow_finished', { id: runId, workflow_id: 'wf-fake-chatflow', status: 'succeeded', outputs: { answer: c.text }, error: null,
        elapsed_time: 0.3, total_tokens: cps(c.query) + cps(c.text), total_steps: 3, created_at, finished_at: created_at }));
  }
  if (c.replaceWith !== undefined) post.push({ json: { event: 'message_replace', ...base, answer: c.replaceWith, reason: 'output_moderation' } });
  post.push({ json: { event: 'message_end', ...base, id: c.messageId, metadata: { usage: usageOf(c.query, final), retriever_resources: [] }, files: null } });
  return [...pre, ...body, ...post.map((f) => ({ ...f, post: true }))];
}

/** Blocking chat answer (`response_mode: "blocking"`). */
export function blockingChat(c: ChatCtx): Json {
  const answer = c.replaceWith ?? c.text;
  return { event: 'message', task_id: c.taskId, id: c.messageId, message_id: c.messageId, conversation_id: c.conversationId,
    mode: MODES[c.variant], answer, metadata: { usage: usageOf(c.query, answer), retriever_resources: [] }, created_at: nowS() };
}

/** Everything a workflow run is built from. */
export interface WorkflowCtx {
  taskId: string;
  runId: string;
  inputs: Json;
  text: string;
  status: 'succeeded' | 'failed';
  outputs: Json;
  error: string | null;
  chunkSize: number;
}

function workflowData(w: WorkflowCtx, created_at: number): Json {
  return { id: w.runId, workflow_id: 'wf-fake-workflow', status: w.status, outputs: w.outputs, error: w.error, elapsed_time: 0.3,
    total_tokens: cps(JSON.stringify(w.inputs)) + cps(w.text), total_steps: 3, created_at, finished_at: created_at };
}

/** The frames of a streamed workflow run (ping excluded). */
export function planWorkflow(w: WorkflowCtx): PlannedFrame[] {
  const created_at = nowS();
  const f = (event: string, data: Json): PlannedFrame => ({ json: { event, workflow_run_id: w.runId, task_id: w.taskId, data } });
  const node = (event: string, index: number, nodeId: string, extra: Json = {}): PlannedFrame =>
    f(event, { id: `${w.runId.slice(0, 8)}-${nodeId}`, node_id: nodeId, node_type: nodeId, title: nodeId.toUpperCase(), index, created_at, ...extra });
  const failed = w.status === 'failed';
  return [
    f('workflow_started', { id: w.runId, workflow_id: 'wf-fake-workflow', sequence_number: 1, inputs: w.inputs, created_at }),
    node('node_started', 1, 'start'),
    node('node_finished', 1, 'start', { outputs: w.inputs, status: 'succeeded', error: null, elapsed_time: 0.01 }),
    node('node_started', 2, 'llm'),
    ...chunkText(w.text, w.chunkSize).map((text) => ({ ...f('text_chunk', { text, from_variable_selector: ['llm', 'text'] }), delta: true })),
    { ...node('node_finished', 2, 'llm', { outputs: failed ? null : { text: w.text }, status: w.status, error: w.error, elapsed_time: 0.2 }), post: true },
    { ...f('workflow_finished', workflowData(w, created_at)), post: true },
  ];
}

/** Blocking workflow-run answer. */
export function blockingWorkflow(w: WorkflowCtx): Json {
  return { task_id: w.taskId, workflow_run_id: w.runId, data: workflowData(w, nowS()) };
}

/** A parsed `multipart/form-data` body: text fields and file parts (bytes kept). */
export interface MultipartForm {
  fields: Record<string, string>;
  files: Array<{ field: string; filename: string; contentType: string; data: Buffer }>;
}

/** Minimal RFC 7578 parser (CRLF delimiters, `name`/`filename` in Content-Disposition); null when malformed. */
export function parseMultipart(body: Buffer, contentType: string): MultipartForm | null {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) return null;
  const delim = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  const form: MultipartForm = { fields: {}, files: [] };
  let pos = body.indexOf(delim);
  if (pos < 0) return null;
  pos += delim.length;
  while (body.subarray(pos, pos + 2).toString('latin1') === '\r\n') {
    const headEnd = body.indexOf('\r\n\r\n', pos + 2);
    const end = headEnd < 0 ? -1 : body.indexOf(next, headEnd + 4);
    if (end < 0) return null;
    const head = body.subarray(pos + 2, headEnd).toString('utf8');
    const disposition = /content-disposition:[^\r\n]*/i.exec(head)?.[0] ?? '';
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
    const filename = /;\s*filename="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) return null;
    const data = body.subarray(headEnd + 4, end);
    if (filename === undefined) form.fields[name] = data.toString('utf8');
    else form.files.push({ field: name, filename, contentType: /content-type:\s*([^\r\n]+)/i.exec(head)?.[1]?.trim() ?? 'application/octet-stream', data });
    pos = end + next.length;
  }
  return body.subarray(pos, pos + 2).toString('latin1') === '--' ? form : null;
}

/** One recorded HTTP request (every request, rejected ones too, in arrival order). */
export interface FakeDifyRequest {
  method: string;
  /** Path without the query string, e.g. `/v1/chat-messages`. */
  path: string;
  /** Lower-cased Node request headers. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON; multipart: `{fields, files: [{field, filename, contentType, size}]}`; else raw text (`''` if empty). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Arrival time, epoch milliseconds. */
  receivedAt: number;
  /** True once the client closed the connection before the server finished its response. */
  closedByClient: boolean;
}

/** One accepted chat-messages request. `answer` is the planned final text (after message_replace), even when the
 *  behaviour then fails mid-stream; `kind` says which behaviour answered. `at` epoch ms. */
export interface FakeDifyTurn {
  query: string;
  answer: string;
  messageId: string;
  taskId: string;
  kind: FakeDifyBehavior['kind'];
  inputs: Json;
  files: unknown[];
  at: number;
}

/** A conversation the fake issued; ids are scoped to `user` like Dify's (app + user). */
export interface FakeDifyConversation {
  id: string;
  user: string;
  turns: FakeDifyTurn[];
  /** Set by `FakeDify.expireConversation`: the id answers 404 from then on. */
  expired: boolean;
  /** Set by `DELETE /v1/conversations/:id`: the id answers 404 from then on. */
  deleted: boolean;
}

/** An accepted upload; `size` bytes, `at` epoch ms. Usable in `files` only by the same `user`. */
export interface FakeDifyUpload {
  id: string;
  user: string;
  name: string;
  size: number;
  extension: string;
  mimeType: string;
  data: Buffer;
  at: number;
}

export interface FakeDifyOptions {
  /** Required `Authorization: Bearer <apiKey>` (else 401). */
  apiKey: string;
  /** Uploads above this many bytes answer 413 file_too_large; default 15 MiB. */
  maxUploadBytes?: number;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function sendStatus(res: ServerResponse, b: Extract<FakeDifyBehavior, { kind: 'status' }>): void {
  if (typeof b.body === 'string') return void res.writeHead(b.status, { 'content-type': 'text/plain; charset=utf-8' }).end(b.body);
  sendJson(res, b.status, b.body ?? difyError(b.status, b.code, b.message));
}

export function write(res: ServerResponse, data: string | Buffer): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => (res.off('close', done), resolve());
    res.once('close', done);
    res.write(data, done);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
