import type { Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { LlmError } from '../errors.js';
import { appendTurn, historyOf, userTurnText, type HistoryLimits } from './history.js';
import { llmErrorFromHttp, llmErrorFromStream } from './http-errors.js';
import { readNdjson } from './ndjson.js';
import { readCapped } from './stream.js';
import { parseFrame, postStream, usageOf } from './transport.js';
import type { LlmAdapter, ReplyResult } from './types.js';
import { trackVisibleText, type VisibleText } from './visible-text.js';

export interface OllamaOptions {
  /** axios instance whose baseURL is the Ollama server, e.g. http://127.0.0.1:11434 (not `localhost`: ::1 first) */
  http: AxiosInstance;
  /** `name:tag`, e.g. qwen2.5:7b */
  model: string;
  systemPrompt: string | null;
  /** how long Ollama keeps the model loaded after the call, e.g. `30m` or `-1` (unset: Ollama's default 5m) */
  keepAlive?: string | null;
  history?: HistoryLimits;
  /** longest silence between two stream lines, ms (default 30 s; a cold model load may need more) */
  idleMs?: number;
}

interface Line {
  error?: string;
  message?: { content?: string; thinking?: string };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
}

const PROVIDER = 'ollama';

/**
 * Ollama's native chat API (docs/providers.md §4): `POST /api/chat` streaming NDJSON; the bridge keeps the history
 * (state `{history}`, capped like OpenAI's). `message.thinking` is never shown nor stored. A line `{"error":…}`
 * under HTTP 200 is a failure; success needs the `done: true` line. 404 = the model is not pulled.
 * Images go on the user message as `images: [<plain base64, no data: prefix>]` (the configured model must be a
 * vision one, e.g. llava or qwen2.5vl; a text-only model may answer with an error); the stored history keeps
 * `[图片]` marks, never the bytes.
 *
 * `req.history` (a `/v1` caller's own turns) replaces the stored history and the result's state is null: the caller
 * keeps that conversation. `onText` gets the `message.content` deltas as they stream (never `message.thinking`).
 */
export function createOllamaAdapter(o: OllamaOptions): LlmAdapter {
  return {
    provider: PROVIDER,
    answersInMarkdown: true,
    acceptsImages: true,
    reply: async (req, signal) => {
      const images = req.images ?? [];
      const body = {
        model: o.model,
        stream: true,
        messages: [
          ...(o.systemPrompt ? [{ role: 'system', content: o.systemPrompt }] : []),
          ...(req.history ? historyOf({ history: req.history }) : historyOf(req.state)),
          {
            role: 'user',
            content: req.text,
            ...(images.length > 0 ? { images: images.map((img) => img.data.toString('base64')) } : {}),
          },
        ],
        ...(o.keepAlive ? { keep_alive: /^-?\d+$/.test(o.keepAlive) ? Number(o.keepAlive) : o.keepAlive } : {}),
      };
      const res = await postStream(o.http, PROVIDER, {
        path: '/api/chat',
        body,
        headers: { accept: 'application/x-ndjson' },
        signal,
        translate: (status, text, retryAfter) => {
          const e = llmErrorFromHttp(PROVIDER, status, text, retryAfter);
          // 404 is a model that was never pulled: a configuration problem, not something a retry fixes.
          return status === 404 ? new LlmError('not_found', `${e.message} (run: ollama pull ${o.model})`, e.options) : e;
        },
      });
      const visible = trackVisibleText(req.onText);
      const parsed = res.contentType.includes('application/json')
        ? whole(await readCapped(res.body, 4 * 1024 * 1024))
        : await readStream(res.body, signal, o.idleMs ?? 30_000, visible);
      visible.finish(parsed.text);
      const state = req.history ? null : appendTurn(req.state, userTurnText(req.text, images.length), parsed.text, o.history);
      return { ...parsed, state };
    },
  };
}

async function readStream(body: Readable, signal: AbortSignal, idleMs: number, visible: VisibleText): Promise<Omit<ReplyResult, 'state'>> {
  let text = '';
  let last: Line | null = null;
  try {
    await readNdjson(body, {
      signal,
      idleMs,
      isFinished: () => last !== null,
      onLine: (raw) => {
        const line = parseFrame<Line>(PROVIDER, raw, text);
        if (line.error) {
          throw new LlmError('upstream', `ollama: ${String(line.error).slice(0, 200)}`, { retryable: text === '', partialText: text });
        }
        text += line.message?.content ?? '';
        visible.append(line.message?.content ?? '');
        if (line.done === true) last = line;
      },
    });
  } catch (e) {
    throw llmErrorFromStream(PROVIDER, e, signal, text);
  }
  const done = last as Line | null;
  if (!done) throw new LlmError('truncated', 'ollama: stream ended without done:true', { retryable: text === '', partialText: text });
  return finish(text, done);
}

/** `stream: true` ignored by a proxy: one JSON object. */
function whole(bodyText: string): Omit<ReplyResult, 'state'> {
  const line = parseFrame<Line>(PROVIDER, bodyText, '');
  if (line.error) throw new LlmError('upstream', `ollama: ${String(line.error).slice(0, 200)}`, { retryable: true });
  if (line.done !== true) throw new LlmError('truncated', 'ollama: answer without done:true');
  return finish(line.message?.content ?? '', line);
}

function finish(text: string, done: Line): Omit<ReplyResult, 'state'> {
  return {
    text,
    usage: usageOf(done.prompt_eval_count, done.eval_count),
    finishReason: done.done_reason === 'length' ? 'length' : 'stop',
  };
}
