import type { Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { LlmError } from '../errors.js';
import { llmErrorFromHttp, llmErrorFromStream } from './http-errors.js';
import { readCapped, readSse } from './stream.js';
import { headerOf, imageBlob, parseFrame, postForm, postStream, usageOf } from './transport.js';
import type { ConversationState, ImageInput, LlmAdapter, ReplyRequest, ReplyResult, Usage } from './types.js';
import { trackVisibleText, type VisibleText } from './visible-text.js';

export interface CozeOptions {
  /** axios instance whose baseURL is https://api.coze.cn (China) or https://api.coze.com (international) */
  http: AxiosInstance;
  /** personal access token (`pat_…`) or OAuth access token */
  apiToken: string;
  botId: string;
  /** longest silence between two stream chunks, ms (default 30 s) */
  idleMs?: number;
}

interface Envelope {
  code?: number;
  msg?: string;
}

interface Message {
  id?: string;
  type?: string;
  content?: string;
  conversation_id?: string;
}

interface Chat {
  id?: string;
  conversation_id?: string;
  usage?: { token_count?: number; output_count?: number; input_count?: number };
  last_error?: { code?: number; msg?: string };
}

const PROVIDER = 'coze';
/** Envelope codes: 4100 authentication, 4101 permission, 4200 not found (our stored conversation), 4013 rate limit. */
const AUTH_CODES = new Set([4100, 4101]);
const NOT_FOUND = 4200;
const RATE_LIMIT = 4013;
const CONVERSATION_GONE = 'conversation_gone';

/**
 * Coze v3 chat (docs/providers.md §2): `POST /v3/chat?conversation_id=…` streaming with `bot_id`, `user_id` = our
 * stable customer id and the customer's text as `additional_messages`; the conversation id (state
 * `{conversationId}`) comes from the first event. Only `answer` messages reach the customer (several are joined;
 * follow-ups, verbose and tool messages are not); `conversation.chat.completed` is the terminal event for content
 * (a missing `done` after it is fine). HTTP 200 with a non-zero `code`, `conversation.chat.failed`,
 * `requires_action` (no client-side tools here) and `error` events are failures. A stored conversation Coze no
 * longer knows (4200) is dropped and the call retried once without it.
 *
 * Images: each is first uploaded with `POST /v1/files/upload` (multipart `file`, the same token) → `data.id`; the
 * user turn is then `content_type:"object_string"` with `content` the JSON *string* of
 * `[{type:"text",text}, {type:"image",file_id}…]` (the text part only when there is text). Uploads are made once
 * per `reply` (the conversation-gone retry reuses them; a retry by the caller uploads again).
 *
 * `onText` gets the answer messages as they stream, joined like the final text; reasoning, follow-ups, verbose and
 * tool messages never reach it. `req.history` is ignored: Coze keeps the conversation.
 * @throws LlmError; an upload failure like the chat's: HTTP status or envelope code (4000 → `bad_request`, 4100/4101
 *   → `auth`, 4013/429 → `rate_limit`, 5xxx/5xx and network failures → retryable `upstream`)
 */
export function createCozeAdapter(o: CozeOptions): LlmAdapter {
  const idleMs = o.idleMs ?? 30_000;
  const upload = async (images: ImageInput[], signal: AbortSignal): Promise<string[]> => {
    const ids: string[] = [];
    for (const img of images) {
      const form = new FormData();
      form.append('file', imageBlob(img), img.name);
      const env = (await postForm(o.http, `${PROVIDER} /v1/files/upload`, {
        path: '/v1/files/upload',
        form,
        headers: { authorization: `Bearer ${o.apiToken}` },
        signal,
        translate: (status, text, retryAfter) => translateHttp(status, text, retryAfter, 'upload'),
      })) as Envelope & { data?: { id?: unknown } };
      const failed = fromEnvelope(env, undefined, 'upload');
      if (failed) throw failed;
      const id = env.data?.id;
      // Coze ids are 19-digit numbers sent as strings; a number would already have lost precision.
      if (typeof id !== 'string' || !id) throw new LlmError('protocol', 'coze: /v1/files/upload answer has no data.id');
      ids.push(id);
    }
    return ids;
  };
  const call = async (req: ReplyRequest, fileIds: string[], conversationId: string | null, signal: AbortSignal): Promise<ReplyResult> => {
    const body = {
      bot_id: o.botId,
      user_id: req.userId,
      stream: true,
      auto_save_history: true,
      additional_messages: [{ role: 'user', ...userContent(req.text, fileIds), type: 'question' }],
    };
    const res = await postStream(o.http, PROVIDER, {
      path: '/v3/chat',
      body,
      params: conversationId ? { conversation_id: conversationId } : undefined,
      headers: { authorization: `Bearer ${o.apiToken}`, accept: 'text/event-stream' },
      signal,
      translate: (status, text, retryAfter) => translateHttp(status, text, retryAfter, 'chat'),
    });
    // A JSON answer to a streaming call is an error envelope (Coze reports most failures under HTTP 200).
    if (res.contentType.includes('application/json')) {
      const env = parseEnvelope(await readCapped(res.body));
      throw fromEnvelope(env) ?? new LlmError('protocol', 'coze: JSON answer to a streaming call');
    }
    const result = await readChat(res.body, signal, idleMs, conversationId, trackVisibleText(req.onText));
    const requestId = headerOf(res.headers, 'x-tt-logid');
    return requestId ? { ...result, requestId } : result;
  };
  return {
    provider: PROVIDER,
    answersInMarkdown: true,
    acceptsImages: true,
    reply: async (req, signal) => {
      // Before the try: an upload failure must never be mistaken for the stored conversation being gone.
      const fileIds = await upload(req.images ?? [], signal);
      const stored = conversationOf(req.state);
      try {
        return await call(req, fileIds, stored, signal);
      } catch (e) {
        if (!stored || !(e instanceof LlmError && e.options.code === CONVERSATION_GONE)) throw e;
        return call(req, fileIds, null, signal);
      }
    },
  };
}

/** The user turn's `content`/`content_type`: plain text, or with images the object_string form (§2 "Images"). */
function userContent(text: string, fileIds: string[]): { content: string; content_type: 'text' | 'object_string' } {
  if (fileIds.length === 0) return { content: text, content_type: 'text' };
  const parts = [...(text ? [{ type: 'text', text }] : []), ...fileIds.map((file_id) => ({ type: 'image', file_id }))];
  return { content: JSON.stringify(parts), content_type: 'object_string' };
}

/** An HTTP error status: the envelope in the body when there is one, else the generic mapping. */
function translateHttp(status: number, text: string, retryAfter: string | undefined, what: 'chat' | 'upload'): LlmError {
  const http = llmErrorFromHttp(what === 'chat' ? PROVIDER : `${PROVIDER} /v1/files/upload`, status, text, retryAfter);
  return fromEnvelope(parseEnvelope(text), { status, retryAfterMs: http.options.retryAfterMs ?? null }, what) ?? http;
}

function conversationOf(state: ConversationState | null): string | null {
  const id = state?.conversationId;
  return typeof id === 'string' && id ? id : null;
}

function parseEnvelope(text: string): Envelope | null {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' ? (v as Envelope) : null;
  } catch {
    return null;
  }
}

/**
 * A non-zero envelope code as an LlmError; null when there is none.
 * @param http the HTTP status (and retry-after) when the envelope came with an error status; none under HTTP 200
 * @param what `upload`: a 4200 is a plain `not_found`, not our "stored conversation gone" (which would retry the chat)
 */
function fromEnvelope(
  env: Envelope | null,
  http: { status: number | null; retryAfterMs: number | null } = { status: null, retryAfterMs: null },
  what: 'chat' | 'upload' = 'chat',
): LlmError | null {
  if (!env || typeof env.code !== 'number' || env.code === 0) return null;
  const msg = `coze${what === 'upload' ? ' /v1/files/upload' : ''}: code ${env.code} ${String(env.msg ?? '').slice(0, 200)}`.trim();
  const base = { code: String(env.code), status: http.status };
  if (AUTH_CODES.has(env.code)) {
    return new LlmError('auth', `${msg} (a token for api.coze.com used on api.coze.cn, or the reverse? check COZE_BASE_URL)`, base);
  }
  if (env.code === NOT_FOUND) return new LlmError('not_found', msg, what === 'chat' ? { ...base, code: CONVERSATION_GONE } : base);
  if (env.code === RATE_LIMIT || http.status === 429) {
    return new LlmError('rate_limit', msg, { ...base, retryable: true, retryAfterMs: http.retryAfterMs });
  }
  if (env.code >= 5000 || (http.status ?? 0) >= 500) return new LlmError('upstream', msg, { ...base, retryable: true });
  return new LlmError('bad_request', msg, base);
}

async function readChat(body: Readable, signal: AbortSignal, idleMs: number, known: string | null, visible: VisibleText): Promise<ReplyResult> {
  const answers: string[] = [];
  let streaming = '';
  let conversationId = known;
  let completed: Chat | null = null;
  let ended = false;
  // From the first event on, Coze has saved the question (auto_save_history): a retry would ask it twice.
  let accepted = false;
  const partial = () => [...answers, streaming].filter(Boolean).join('\n\n');
  try {
    await readSse(body, {
      signal,
      idleMs,
      // Nothing the customer sees follows chat.completed; a server that then keeps the socket open is not an error.
      isFinished: () => ended || completed !== null,
      onEvent: (ev) => {
        if (ev.event === 'done') {
          ended = true;
          return;
        }
        accepted = true;
        if (ev.event === 'conversation.audio.delta') return;
        const f = parseFrame<Message & Chat & Envelope>(PROVIDER, ev.data || '{}', partial());
        if (f.conversation_id) conversationId = f.conversation_id;
        switch (ev.event) {
          case 'conversation.message.delta':
            if (f.type === 'answer' && f.content) {
              // A new answer message is joined to the earlier ones the way partial() joins them.
              visible.append(streaming === '' && answers.some(Boolean) ? `\n\n${f.content}` : f.content);
              streaming += f.content;
            }
            return;
          case 'conversation.message.completed':
            if (f.type === 'answer') {
              const same = (f.content ?? streaming) === streaming;
              answers.push(f.content ?? streaming);
              streaming = '';
              if (!same) visible.replace(partial());
            }
            return;
          case 'conversation.chat.completed':
            completed = f;
            return;
          case 'conversation.chat.failed':
            throw new LlmError('upstream', `coze: chat failed ${f.last_error?.code ?? ''} ${f.last_error?.msg ?? ''}`.trim(), {
              code: f.last_error?.code === undefined ? null : String(f.last_error.code),
              partialText: partial(),
            });
          case 'conversation.chat.requires_action':
            throw new LlmError('bad_request', 'coze: the bot asked for a client-side tool call (requires_action); not supported', {
              partialText: partial(),
            });
          case 'error':
            throw new LlmError('upstream', `coze: error event ${f.code ?? ''} ${f.msg ?? ''}`.trim(), { partialText: partial() });
          default:
        }
      },
    });
  } catch (e) {
    throw llmErrorFromStream(PROVIDER, e, signal, partial(), accepted);
  }
  const chat = completed as Chat | null;
  if (!chat) throw new LlmError('truncated', 'coze: stream ended without conversation.chat.completed', { retryable: !accepted, partialText: partial() });
  const text = partial();
  visible.finish(text);
  const u = chat.usage;
  const usage: Usage | null = u ? usageOf(u.input_count, u.output_count, u.token_count) : null;
  return { text, state: conversationId ? { conversationId } : null, usage, finishReason: 'stop' };
}
