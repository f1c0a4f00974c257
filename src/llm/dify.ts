import type { Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { LlmError } from '../errors.js';
import { llmErrorFromHttp, llmErrorFromStream } from './http-errors.js';
import { readSse } from './stream.js';
import { parseFrame, postStream, usageOf } from './transport.js';
import type { ConversationState, LlmAdapter, ReplyRequest, ReplyResult } from './types.js';

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

/**
 * Dify apps (llm-providers.md §1). Chat mode streams `POST /chat-messages` with `user` = our stable customer id
 * and the stored `conversation_id` (state `{conversationId}`): `message`/`agent_message` deltas (agent thoughts
 * are never shown), `message_replace` replaces the text, `message_end` is the terminal event, `error` fails.
 * A conversation Dify no longer knows (404, or a 400 naming the conversation) is dropped and the call retried
 * once without it. Workflow mode streams `POST /workflows/run` (stateless); `workflow_finished` with status
 * `succeeded` is terminal and the answer is `outputs[outputKey]` (or the streamed `text_chunk`s).
 */
export function createDifyAdapter(o: DifyOptions): LlmAdapter {
  const idleMs = o.idleMs ?? 30_000;
  const headers = { authorization: `Bearer ${o.apiKey}`, accept: 'text/event-stream' };
  const chat = async (req: ReplyRequest, conversationId: string | null, signal: AbortSignal) => {
    const body = {
      query: req.text,
      inputs: {},
      response_mode: 'streaming',
      user: req.userId,
      auto_generate_name: false,
      ...(conversationId ? { conversation_id: conversationId } : {}),
    };
    const res = await postStream(o.http, PROVIDER, { path: '/chat-messages', body, headers, signal, translate: translateHttp });
    return readChat(res.body, signal, idleMs);
  };
  return {
    provider: PROVIDER,
    answersInMarkdown: true,
    acceptsImages: false,
    reply: async (req, signal) => {
      if (o.mode === 'workflow') {
        const body = { inputs: { [o.inputKey ?? 'query']: req.text }, response_mode: 'streaming', user: req.userId };
        const res = await postStream(o.http, PROVIDER, { path: '/workflows/run', body, headers, signal, translate: translateHttp });
        return { ...(await readWorkflow(res.body, signal, idleMs, o.outputKey ?? 'text')), state: null };
      }
      const stored = conversationOf(req.state);
      try {
        return await chat(req, stored, signal);
      } catch (e) {
        if (!stored || !(e instanceof LlmError && e.options.code === CONVERSATION_GONE)) throw e;
        // Dify forgot the conversation (expired, deleted, another app): start a new one, once.
        return chat(req, null, signal);
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

async function readChat(body: Readable, signal: AbortSignal, idleMs: number): Promise<ReplyResult> {
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
        if (f.event === 'message' || f.event === 'agent_message') text += f.answer ?? '';
        else if (f.event === 'message_replace') text = f.answer ?? '';
        else if (f.event === 'message_end') end = f;
        else if (f.event === 'error') throw streamError(f, text);
      },
    });
  } catch (e) {
    throw llmErrorFromStream(PROVIDER, e, signal, text, accepted);
  }
  const last = end as Frame | null;
  if (!last) throw new LlmError('truncated', 'dify: stream ended without message_end', { retryable: !accepted, partialText: text });
  const u = last.metadata?.usage;
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
        if (f.event === 'text_chunk') text += f.data?.text ?? '';
        else if (f.event === 'workflow_finished') finished = f;
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
  return {
    text: typeof output === 'string' ? output : text,
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
