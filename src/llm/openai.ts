import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { LlmError } from '../errors.js';
import { appendTurn, historyOf, userTurnText, type HistoryLimits } from './history.js';
import { llmErrorFromStream } from './http-errors.js';
import { readCapped, readSse } from './stream.js';
import { headerOf, parseFrame, postStream } from './transport.js';
import type { ImageInput, LlmAdapter, ReplyResult, Usage } from './types.js';
import { trackVisibleText, type VisibleText } from './visible-text.js';

export interface OpenAiOptions {
  /** axios instance whose baseURL is the API base, e.g. https://api.openai.com/v1 or https://api.deepseek.com */
  http: AxiosInstance;
  apiKey: string;
  model: string;
  systemPrompt: string | null;
  history?: HistoryLimits;
  /** longest silence between two stream chunks, ms (default 30 s) */
  idleMs?: number;
  /**
   * The model takes image parts (OPENAI_VISION / the agent's `vision`; config defaults it to true). Off here unless
   * given, so a bare adapter never sends `image_url` parts to a text-only model (DeepSeek refuses those).
   */
  vision?: boolean;
}

/** One part of a user message's `content` array (docs/providers.md §3). */
type ContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

interface Chunk {
  choices?: { delta?: { content?: string | null; reasoning_content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
  error?: { message?: string; code?: string | number } | string;
}

const FINISH: Record<string, ReplyResult['finishReason']> = { stop: 'stop', length: 'length', content_filter: 'filtered' };

/**
 * Any OpenAI-compatible chat-completions API (OpenAI, DeepSeek, vLLM, Ollama's /v1): `POST {base}/chat/completions`
 * with `stream: true` and `stream_options.include_usage` (docs/providers.md §3). The bridge keeps the history
 * (state `{history}`) capped by turns and characters; DeepSeek's `reasoning_content` is neither shown nor stored.
 * Success needs a `finish_reason` and `data: [DONE]`; anything less is `truncated`.
 *
 * Images (only with `vision`): the user message's `content` becomes parts, `{type:"text"}` (when there is text)
 * then one `{type:"image_url", image_url:{url:"data:<mime>;base64,…"}}` per image. The stored history keeps only
 * `[图片]` marks plus the text: images are sent once, with the turn they came with, never again.
 *
 * `req.history` (a `/v1` caller's own turns) replaces the stored history and the result's state is null: the caller
 * keeps that conversation. `onText` gets the `content` deltas as they stream (never `reasoning_content`).
 * @throws LlmError `bad_request` when given images while `vision` is off (the caller must check `acceptsImages`)
 */
export function createOpenAiAdapter(o: OpenAiOptions): LlmAdapter {
  const provider = 'openai';
  return {
    provider,
    answersInMarkdown: true,
    acceptsImages: o.vision === true,
    reply: async (req, signal) => {
      const images = req.images ?? [];
      if (images.length > 0 && o.vision !== true) {
        // Dropping them would let the model answer as if it had seen the picture; the port says not to call us.
        throw new LlmError('bad_request', 'openai: images given to an adapter with vision off (check acceptsImages)');
      }
      const messages = [
        ...(o.systemPrompt ? [{ role: 'system', content: o.systemPrompt }] : []),
        ...(req.history ? historyOf({ history: req.history }) : historyOf(req.state)),
        { role: 'user', content: images.length > 0 ? contentParts(req.text, images) : req.text },
      ];
      const body = {
        model: o.model,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        // A stable pseudonym lets the provider attribute abuse without learning the WeChat id.
        user: createHash('sha256').update(req.userId).digest('hex').slice(0, 32),
      };
      const res = await postStream(o.http, provider, {
        path: '/chat/completions',
        body,
        headers: { authorization: `Bearer ${o.apiKey}`, accept: 'text/event-stream' },
        signal,
      });
      const visible = trackVisibleText(req.onText);
      const parsed = res.contentType.includes('application/json')
        ? parseWhole(await readCapped(res.body, 4 * 1024 * 1024))
        : await readStream(res.body, signal, o.idleMs ?? 30_000, visible);
      visible.finish(parsed.text);
      const requestId = headerOf(res.headers, 'x-request-id');
      const state = req.history ? null : appendTurn(req.state, userTurnText(req.text, images.length), parsed.text, o.history);
      return { ...parsed, ...(requestId ? { requestId } : {}), state };
    },
  };
}

/** A user `content` array: the text part (left out when empty: some compatibles refuse an empty text part), then
 *  each image as a base64 data URL. */
function contentParts(text: string, images: ImageInput[]): ContentPart[] {
  return [
    ...(text ? [{ type: 'text' as const, text }] : []),
    ...images.map((img) => ({ type: 'image_url' as const, image_url: { url: `data:${img.mime};base64,${img.data.toString('base64')}` } })),
  ];
}

async function readStream(body: Readable, signal: AbortSignal, idleMs: number, visible: VisibleText): Promise<Omit<ReplyResult, 'state'>> {
  let text = '';
  let finish: string | null = null;
  let usage: Usage | null = null;
  let done = false;
  try {
    await readSse(body, {
      signal,
      idleMs,
      isFinished: () => done,
      onEvent: (ev) => {
        if (done) return;
        if (ev.data.trim() === '[DONE]') {
          done = true;
          return;
        }
        const chunk = parseFrame<Chunk>('openai', ev.data, text);
        if (chunk.error) {
          const msg = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'error frame');
          throw new LlmError('upstream', `openai: ${msg}`, { retryable: true });
        }
        const choice = chunk.choices?.[0];
        if (choice?.delta?.content) {
          text += choice.delta.content;
          visible.append(choice.delta.content);
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) usage = toUsage(chunk.usage);
      },
    });
  } catch (e) {
    throw llmErrorFromStream('openai', e, signal, text);
  }
  if (!done || !finish) {
    throw new LlmError('truncated', 'openai: stream ended without finish_reason and [DONE]', {
      retryable: text === '',
      partialText: text,
    });
  }
  return { text, usage, finishReason: FINISH[finish] ?? 'other' };
}

/** Some compatible servers ignore `stream: true` and answer one JSON document. */
function parseWhole(bodyText: string): Omit<ReplyResult, 'state'> {
  let v: { choices?: { message?: { content?: string }; finish_reason?: string }[]; usage?: Chunk['usage'] };
  try {
    v = JSON.parse(bodyText) as typeof v;
  } catch {
    throw new LlmError('protocol', 'openai: answer is not JSON');
  }
  const choice = v.choices?.[0];
  if (typeof choice?.message?.content !== 'string') throw new LlmError('protocol', 'openai: answer has no message');
  return {
    text: choice.message.content,
    usage: v.usage ? toUsage(v.usage) : null,
    finishReason: FINISH[choice.finish_reason ?? 'stop'] ?? 'other',
  };
}

function toUsage(u: NonNullable<Chunk['usage']>): Usage {
  return {
    inputTokens: u.prompt_tokens ?? null,
    outputTokens: u.completion_tokens ?? null,
    totalTokens: u.total_tokens ?? null,
  };
}
