import type { Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { LlmError } from '../errors.js';
import { IMAGE_MARK } from './history.js';
import { llmErrorFromHttp, llmErrorFromStream } from './http-errors.js';
import { readSse } from './stream.js';
import { imageBlob, parseFrame, postForm, postStream, usageOf } from './transport.js';
import type { ConversationState, ImageInput, LlmAdapter, ReplyRequest, ReplyResult } from './types.js';
import { trackVisibleText, type VisibleText } from './visible-text.js';

export interface DifyOptions {
  /** axios instance whose baseURL is the app API, e.g. https://api.dify.ai/v1 or https://dify.example.com/v1 */
  http: AxiosInstance;
  /** the app's API key (`app-…`) */
  apiKey: string;
  /** `chat` (Chat, Agent, Chatflow apps: /chat-messages) or `workflow` (Workflow apps: /workflows/run) */
  mode?: 'chat' | 'workflow';
  /** workflow mode: the input that gets the customer's text (default `query`) */
  inputKey?: string;
  /** workflow mode: the output that holds the answer (default `text`) */
  outputKey?: string;
  /**
   * workflow mode: a file-list input variable that also gets the customer's images (Dify puts files inside
   * `inputs`). Unset: images go only in the run's top-level `files` (the workflow's `sys.files`).
   */
  imageInputKey?: string;
  /** longest silence between two stream chunks, ms (Dify pings every ~10 s; default 30 s) */
  idleMs?: number;
}

interface Frame {
  event?: string;
  answer?: string;
  conversation_id?: string;
  message_id?: string;
  task_id?: string;
  status?: number;
  code?: string;
  message?: string;
  metadata?: { usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } };
  data?: { text?: string; status?: string; outputs?: Record<string, unknown> | null; error?: string | null; total_tokens?: number };
}

const PROVIDER = 'dify';

/** A file reference in a chat / workflow request (docs/providers.md §1 `files`). */
interface DifyFile {
  type: 'image';
  transfer_method: 'local_file';
  upload_file_id: string;
}

/**
 * Dify apps (docs/providers.md §1). Chat mode streams `POST /chat-messages` with `user` = our stable customer id
 * and the stored `conversation_id` (state `{conversationId}`): `message`/`agent_message` deltas (agent thoughts
 * are never shown), `message_replace` replaces the text, `message_end` is the terminal event, `error` fails.
 * A conversation Dify no longer knows (404, or a 400 naming the conversation) is dropped and the call retried
 * once without it. Workflow mode streams `POST /workflows/run` (stateless); `workflow_finished` with status
 * `succeeded` is terminal and the answer is `outputs[outputKey]` (or the streamed `text_chunk`s).
 *
 * Images: each is first uploaded with `POST /files/upload` (multipart `file` + `user`, the same user as the chat:
 * Dify lets only that user use the upload) and then referenced as `{type:"image", transfer_method:"local_file",
 * upload_file_id}` in `files` (chat) or in the run's `files` and `inputs[imageInputKey]` (workflow). Uploads are
 * made once per `reply` (the conversation-gone retry reuses them; a retry by the caller uploads again). An image
 * with no text asks `[图片]`, so the query (and a workflow's text input) is never empty. The app must have image
 * upload enabled (`file_upload.image.enabled` in `GET /parameters`), else the model may never see them; this adapter
 * does not check it.
 *
 * `onText` gets the visible chat text as it streams (`message_replace` replaces it; agent thoughts never reach it),
 * or a workflow's `text_chunk`s and finally its output. `req.history` is ignored: Dify keeps the conversation.
 * @throws LlmError; upload failures as `llmErrorFromHttp` maps them: 400 (`no_file_uploaded`, `too_many_files`),
 *   413 `file_too_large`, 415 `unsupported_file_type` are `bad_request` (not retryable), 5xx and network failures
 *   retryable `upstream`
 */
export function createDifyAdapter(o: DifyOptions): LlmAdapter {
  const idleMs = o.idleMs ?? 30_000;
  const headers = { authorization: `Bearer ${o.apiKey}`, accept: 'text/event-stream' };
  const upload = async (images: ImageInput[], user: string, signal: AbortSignal): Promise<DifyFile[]> => {
    const files: DifyFile[] = [];
    // One at a time, in order: Dify takes one file per upload, and a customer message rarely has more than one.
    for (const img of images) {
      const form = new FormData();
      form.append('file', imageBlob(img), img.name);
      form.append('user', user);
      // No translateHttp: an upload has no conversation, its 400/404 must not look like "conversation gone".
      const json = await postForm(o.http, `${PROVIDER} /files/upload`, {
        path: '/files/upload',
        form,
        headers: { authorization: headers.authorization },
        signal,
      });
      if (typeof json.id !== 'string' || !json.id) throw new LlmError('protocol', 'dify: /files/upload answer has no id');
      files.push({ type: 'image', transfer_method: 'local_file', upload_file_id: json.id });
    }
    return files;
  };
  const chat = async (req: ReplyRequest, query: string, files: DifyFile[], conversationId: string | null, signal: AbortSignal) => {
    const body = {
      query,
      inputs: {},
      response_mode: 'streaming',
      user: req.userId,
      auto_generate_name: false,
      ...(files.length > 0 ? { files } : {}),
      ...(conversationId ? { conversation_id: conversationId } : {}),
    };
    const res = await postStream(o.http, PROVIDER, { path: '/chat-messages', body, headers, signal, translate: translateHttp });
    return readChat(res.body, signal, idleMs, trackVisibleText(req.onText));
  };
  return {
    provider: PROVIDER,
    answersInMarkdown: true,
    acceptsImages: true,
    reply: async (req, signal) => {
      const files = await upload(req.images ?? [], req.userId, signal);
      const query = files.length > 0 && !req.text ? IMAGE_MARK : req.text;
      if (o.mode === 'workflow') {
        const inputs: Record<string, unknown> = { [o.inputKey ?? 'query']: query };
        if (files.length > 0 && o.imageInputKey) inputs[o.imageInputKey] = files;
        const body = { inputs, response_mode: 'streaming', user: req.userId, ...(files.length > 0 ? { files } : {}) };
        const res = await postStream(o.http, PROVIDER, { path: '/workflows/run', body, headers, signal, translate: translateHttp });
        const visible = trackVisibleText(req.onText);
        return { ...(await readWorkflow(res.body, signal, idleMs, o.outputKey ?? 'text', visible)), state: null };
      }
      const stored = conversationOf(req.state);
      try {
        return await chat(req, query, files, stored, signal);
      } catch (e) {
        if (!stored || !(e instanceof LlmError && e.options.code === CONVERSATION_GONE)) throw e;
        // Dify forgot the conversation (expired, deleted, another app): start a new one, once. The uploads belong
        // to the user, not the conversation, so they are reused.
        return chat(req, query, files, null, signal);
      }
    },
  };
}

/** Our own code for "the stored conversation is gone"; never leaves the adapter when a retry is possible. */
const CONVERSATION_GONE = 'conversation_gone';

function translateHttp(status: number, bodyText: string, retryAfter: string | undefined): LlmError {
  const e = llmErrorFromHttp(PROVIDER, status, bodyText, retryAfter);
  if (status === 404 || (status === 400 && /conversation/i.test(bodyText))) {
    return new LlmError('not_found', e.message, { ...e.options, code: CONVERSATION_GONE });
  }
  return e;
}

function conversationOf(state: ConversationState | null): string | null {
  const id = state?.conversationId;
  return typeof id === 'string' && id ? id : null;
}

async function readChat(body: Readable, signal: AbortSignal, idleMs: number, visible: VisibleText): Promise<ReplyResult> {
  let text = '';
  let conversationId: string | null = null;
  let taskId: string | undefined;
  let end: Frame | null = null;
  // A frame naming the message means Dify recorded the question in the conversation: a retry would ask it twice.
  let accepted = false;
  try {
    await readSse(body, {
      signal,
      idleMs,
      isFinished: () => end !== null,
      onEvent: (ev) => {
        const f = parseFrame<Frame>(PROVIDER, ev.data, text);
        if (f.message_id || f.task_id) accepted = true;
        taskId ??= f.task_id;
        if (f.conversation_id) conversationId = f.conversation_id;
        if (f.event === 'message' || f.event === 'agent_message') {
          text += f.answer ?? '';
          visible.append(f.answer ?? '');
        } else if (f.event === 'message_replace') {
          text = f.answer ?? '';
          visible.replace(text);
        } else if (f.event === 'message_end') end = f;
        else if (f.event === 'error') throw streamError(f, text);
      },
    });
  } catch (e) {
    throw llmErrorFromStream(PROVIDER, e, signal, text, accepted);
  }
  const last = end as Frame | null;
  if (!last) throw new LlmError('truncated', 'dify: stream ended without message_end', { retryable: !accepted, partialText: text });
  const u = last.metadata?.usage;
  visible.finish(text);
  return {
    text,
    state: conversationId ? { conversationId } : null,
    usage: u ? usageOf(u.prompt_tokens, u.completion_tokens, u.total_tokens) : null,
    finishReason: 'stop',
    ...(taskId ? { requestId: taskId } : {}),
  };
}

async function readWorkflow(
  body: Readable,
  signal: AbortSignal,
  idleMs: number,
  outputKey: string,
  visible: VisibleText,
): Promise<Omit<ReplyResult, 'state'>> {
  let text = '';
  let finished: Frame | null = null;
  try {
    await readSse(body, {
      signal,
      idleMs,
      isFinished: () => finished !== null,
      onEvent: (ev) => {
        const f = parseFrame<Frame>(PROVIDER, ev.data, text);
        if (f.event === 'text_chunk') {
          text += f.data?.text ?? '';
          visible.append(f.data?.text ?? '');
        } else if (f.event === 'workflow_finished') finished = f;
        else if (f.event === 'error') throw streamError(f, text);
      },
    });
  } catch (e) {
    throw llmErrorFromStream(PROVIDER, e, signal, text);
  }
  const done = (finished as Frame | null)?.data;
  if (!done) throw new LlmError('truncated', 'dify: stream ended without workflow_finished', { retryable: text === '', partialText: text });
  if (done.status !== 'succeeded') {
    throw new LlmError('upstream', `dify: workflow ${done.status ?? 'failed'}: ${String(done.error ?? '').slice(0, 200)}`, { partialText: text });
  }
  const output = done.outputs?.[outputKey];
  const answer = typeof output === 'string' ? output : text;
  visible.finish(answer);
  return {
    text: answer,
    usage: done.total_tokens ? usageOf(null, null, done.total_tokens) : null,
    finishReason: 'stop',
  };
}

function streamError(f: Frame, partialText: string): LlmError {
  const status = typeof f.status === 'number' ? f.status : null;
  return new LlmError('upstream', `dify: error event ${f.code ?? ''} ${String(f.message ?? '').slice(0, 200)}`.trim(), {
    status,
    code: f.code ?? null,
    retryable: partialText === '' && (status === null || status >= 500),
    partialText,
  });
}
