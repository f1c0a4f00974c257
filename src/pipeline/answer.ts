import type { Logger } from 'pino';
import type { Replies } from '../config.js';
import { LlmError } from '../errors.js';
import { formatAnswer, LONG_ANSWER_CHARS, type FormatInput, type FormattedAnswer } from '../format/format-answer.js';
import { stripReasoning } from '../format/reasoning.js';
import { planPartsWithImages } from '../format/plan-with-images.js';
import type { LlmBreaker } from '../llm/breaker.js';
import type { ConversationState, CustomerRef, ImageInput, LlmAdapter } from '../llm/types.js';
import type { LogChannel } from '../log/types.js';
import type { Metrics } from '../metrics.js';
import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';
import type { ReplyKind } from './jobs.js';
import { matchesKeyword } from './keywords.js';
import { createLlmCall, type LlmCall } from './llm-call.js';
import type { LlmUse, MessagePlace } from './recorder.js';
import type { RateLimiter } from './rate-limit.js';

/** The customer-visible limits of one channel. */
export interface PartLimits {
  /** UTF-8 bytes per text message (kf 2048, OA 2000) */
  maxBytes: number;
  /** messages per customer message, the continue hint's part included (kf 5) */
  maxParts: number;
  /** the channel sends `![alt](url)` images as image messages (kf); otherwise they are written as `alt (url)` */
  images?: boolean;
  /** the channel renders markdown (smart bot): markdown answers keep it, sanitised (format/sanitize-markdown.ts) */
  markdown?: boolean;
}

export interface AnswerRequest {
  /** `customerKey(channel, account, user)` */
  customer: string;
  text: string;
  /** images sent with this message (only for adapters whose `acceptsImages` is true) */
  images?: ImageInput[];
  /** the inbound msgid, for logs */
  traceId: string;
  signal: AbortSignal;
  limits: PartLimits;
  /**
   * OA passive replies: every message (not only a continue keyword) takes the next piece of a pending answer,
   * and the hint says so; the customer has no other way to receive it.
   */
  anyMessageContinues?: boolean;
  /** called right before the LLM is asked (not for keywords or a pending rest), e.g. to show "typing" */
  onLlmStart?: () => void;
  /**
   * Streaming channels (smart bot): the visible answer so far as the LLM writes it (a snapshot, never a delta; see
   * ReplyRequest.onText). Provisional: the planned reply is what counts.
   */
  onText?: (visibleSoFar: string) => void;
}

/**
 * What a reply changes in the store, applied by `apply` only after the plan itself is saved with the job, so a
 * re-run after a crash neither reads a half-updated state nor appends a turn twice. Absent = leave as is.
 */
export interface ReplyEffects {
  /** the conversation state to keep (JSON); null deletes it */
  conversation?: string | null;
  /** the rest of a long answer for the continue keyword; null clears it */
  rest?: string | null;
}

/** A reply fixed before anything is sent. */
export interface PlannedReply {
  parts: string[];
  kind: ReplyKind;
  effects: ReplyEffects;
  /** the whole reply before the split (what a channel keeps when it cannot deliver the parts now) */
  text: string;
  /** when the LLM was asked: which agent, how long it took, the tokens it reported (for the message log) */
  llm?: LlmUse;
}

export interface Answerer {
  /**
   * Decides the reply to one customer text (already admitted by `admit`): a keyword command (never sent to the
   * LLM), the rest of a long answer, or the LLM's answer formatted for WeChat; LLM failures become the exact
   * fallback texts.
   * Reads the store but writes nothing: the caller saves the plan, then calls `apply`.
   * @throws the signal's reason when aborted (shutdown, lost lease): the job is re-run later, nothing is sent
   */
  answer(req: AnswerRequest): Promise<PlannedReply>;
  /**
   * Counts one customer message against RATE_LIMIT_PER_CUSTOMER_PER_MIN. Channels call it before any work on the
   * message (downloads, page reads, file parsing, the LLM), so a customer over the limit costs one store call.
   * @param customer `customerKey(channel, account, user)`; @param traceId the inbound msgid, for logs
   * @returns null within the limit; otherwise the plan to use instead of an answer: REPLY_ON_RATE_LIMIT for the
   *   first message past the limit, then an empty plan (no reply) for the rest of the minute
   */
  admit(customer: string, traceId: string): Promise<PlannedReply | null>;
  /** Writes a plan's effects for `customer` (idempotent: the same effects twice leave the same store). */
  apply(customer: string, effects: ReplyEffects): Promise<void>;
  /**
   * Whether the agent takes a description of a non-text message (a location, a link). The `echo` agent does not:
   * docs/configuration.md has it answer every non-text message with REPLY_UNSUPPORTED.
   */
  readonly takesDescriptions: boolean;
  /** Whether the agent takes customer images (the adapter's `acceptsImages`). */
  readonly takesImages: boolean;
}

export interface AnswererOptions {
  store: Store;
  adapter: LlmAdapter;
  /** agent name for state keys and metrics (`default` for the LLM_PROVIDER agent) */
  agent: string;
  /** LLM_TIMEOUT_MS */
  timeoutMs: number;
  replies: Replies;
  keywords: { reset: string[]; continue: string[] };
  metrics: Metrics;
  log: Logger;
  /** first LLM retry backoff, ms (tests shorten it) */
  minBackoffMs?: number;
  /** the agent's circuit breaker; none: every message asks the LLM */
  breaker?: LlmBreaker;
  /** RATE_LIMIT_PER_CUSTOMER_PER_MIN; none: no limit */
  limiter?: RateLimiter;
  /** LLM calls of this agent at once in this process (default: unbounded) */
  maxConcurrency?: number;
  /** the agent's shared LlmCall (agents.ts builds one per agent for the channels and /v1); default: built here */
  call?: LlmCall;
  /**
   * The operator's customer id (`cus_…`) of a place, for agents told who is asking (the webhook's `customer`).
   * Absent, or failing (the identity store is down): the id is ''.
   */
  identify?: (place: MessagePlace) => Promise<string>;
  /**
   * Formats an answer longer than LONG_ANSWER_CHARS off the event loop (the extraction pool's worker thread).
   * @throws when it cannot (busy, timed out): the customer then gets REPLY_ON_ERROR. Absent: formatted inline.
   */
  formatLong?: (input: FormatInput, signal: AbortSignal) => Promise<FormattedAnswer>;
}

const CONVERSATION_TTL_MS = 7 * 24 * 3600_000;
/** The hint of a passive reply whose answer goes on: any message fetches the next piece. */
export const ANY_MESSAGE_HINT = '（内容较长，回复任意消息查看剩余部分）';
/** kf's sending window: after 48 h without a customer message nothing can be sent anyway. */
const REST_TTL_MS = 48 * 3600_000;

/**
 * The channel-agnostic part of a reply: keywords (docs/configuration.md "Keywords"), conversation state in the store
 * (`conv:<agent>:<customer>`, 7 days), the LLM through `runLlm` (retries and one deadline), markdown → WeChat
 * text for adapters that answer in markdown, and the split into parts with the continue hint (the rest is kept
 * 48 h under `rest:<customer>`). LLM failures become `fallback` replies with the exact configured texts.
 */
export function createAnswerer(o: AnswererOptions): Answerer {
  const keywordHint = `（内容较长，回复“${o.keywords.continue[0] ?? '继续'}”查看剩余部分）`;
  const hintFor = (req: AnswerRequest) => (req.anyMessageContinues ? ANY_MESSAGE_HINT : keywordHint);
  const convKey = (customer: string) => keys.conversation(o.agent, customer);

  /**
   * Converts and splits an answer; what did not fit is kept for the continue keyword (or an older rest cleared).
   * Long answers go to `formatLong` (off the event loop). @returns null when nothing visible is left
   */
  const plan = async (
    raw: string,
    source: FormatInput['source'],
    kind: ReplyKind,
    req: AnswerRequest,
    conversation?: string,
  ): Promise<PlannedReply | null> => {
    const input: FormatInput = {
      text: raw,
      source,
      imageMarkers: req.limits.images === true,
      maxBytes: req.limits.maxBytes,
      maxParts: req.limits.maxParts,
      hint: hintFor(req),
      ...(req.limits.markdown ? { keepMarkdown: true } : {}),
    };
    const { text, parts, rest } = raw.length > LONG_ANSWER_CHARS && o.formatLong ? await o.formatLong(input, req.signal) : formatAnswer(input);
    if (!text) return null;
    return { parts, kind, text, effects: { rest, ...(conversation === undefined ? {} : { conversation }) } };
  };
  /** A fallback touches nothing: the customer's conversation and any pending rest stay. */
  const fallback = (text: string, req: AnswerRequest): PlannedReply => ({
    parts: planPartsWithImages(text, { ...req.limits, hint: hintFor(req) }).parts,
    kind: 'fallback',
    effects: {},
    text,
  });

  const call =
    o.call ??
    createLlmCall({ adapter: o.adapter, agent: o.agent, timeoutMs: o.timeoutMs, metrics: o.metrics, breaker: o.breaker, maxConcurrency: o.maxConcurrency, minBackoffMs: o.minBackoffMs });

  const askLlm = async (req: AnswerRequest): Promise<PlannedReply> => {
    // Only the webhook is told who asks: resolving an id costs a store round trip (a new customer's, a MySQL insert),
    // which the other agents' replies must not wait for.
    const identify = o.adapter.provider === 'webhook' ? o.identify : undefined;
    const [stored, customer] = await Promise.all([o.store.get(convKey(req.customer)), customerRefOf(req.customer, identify)]);
    const state = parseState(stored);
    req.onLlmStart?.();
    const { outcome, seconds } = await call(
      {
        userId: req.customer,
        text: req.text,
        state,
        traceId: req.traceId,
        ...(customer ? { customer } : {}),
        ...(req.images?.length ? { images: req.images } : {}),
        ...(req.onText ? { onText: req.onText } : {}),
      },
      req.signal,
    );
    const use = (usage?: { inputTokens: number | null; outputTokens: number | null } | null): LlmUse => ({
      agent: o.agent,
      latencyMs: Math.round(seconds * 1000),
      inputTokens: usage?.inputTokens ?? null,
      outputTokens: usage?.outputTokens ?? null,
    });
    if (!outcome.ok) {
      if (outcome.reason === 'aborted') throw req.signal.reason ?? new Error('aborted');
      // Only what identifies the failure: the error's partial text is the customer's answer, not for the logs.
      o.log.warn({ error: describeLlmError(outcome.error), reason: outcome.reason, attempts: outcome.attempts }, 'LLM failed; sending fallback');
      return { ...fallback(outcome.reason === 'timeout' ? o.replies.onTimeout : o.replies.onError, req), llm: use() };
    }
    const { finishReason, usage, requestId } = outcome.result;
    const visible = stripReasoning(outcome.result.text);
    // A filtered or abnormally ended answer is partial text in disguise; a length-capped one is complete enough.
    if (visible === null || finishReason === 'filtered' || finishReason === 'other') {
      o.log.warn({ finishReason, unclosedThink: visible === null, requestId }, 'LLM answer not usable; sending fallback');
      return { ...fallback(o.replies.onError, req), llm: use(usage) };
    }
    const ms = Math.round(seconds * 1000);
    if (finishReason === 'length') o.log.warn({ requestId }, 'LLM answer cut at its token limit; sending it as it is');
    const newState = outcome.result.state ? JSON.stringify(outcome.result.state) : undefined;
    // Plain answers (echo repeats the customer) lose the marker characters too: nobody but the converter makes images.
    let planned: PlannedReply | null;
    try {
      planned = await plan(visible, o.adapter.answersInMarkdown ? 'markdown' : 'plain', 'answer', req, newState);
    } catch (e) {
      if (req.signal.aborted) throw e;
      o.log.warn({ requestId, err: e instanceof Error ? e.message : String(e), chars: visible.length }, 'long answer could not be formatted; sending fallback');
      return { ...fallback(o.replies.onError, req), llm: use(usage) };
    }
    if (!planned) {
      o.log.warn({ requestId }, 'LLM answered with no visible text; sending fallback');
      return { ...fallback(o.replies.onError, req), llm: use(usage) };
    }
    o.log.info({ attempts: outcome.attempts, ms, usage, requestId }, 'LLM answered');
    return { ...planned, llm: use(usage) };
  };

  return {
    takesDescriptions: o.adapter.provider !== 'echo',
    takesImages: o.adapter.acceptsImages,
    admit: async (customer, traceId) => {
      const verdict = o.limiter ? await o.limiter.check(customer) : 'ok';
      if (verdict === 'ok') return null;
      o.metrics.rateLimited.inc({ agent: o.agent });
      o.log.warn({ traceId, verdict }, 'customer over RATE_LIMIT_PER_CUSTOMER_PER_MIN');
      // Told once per minute; the messages after that get no reply at all (an empty plan).
      const text = verdict === 'notify' ? o.replies.rateLimited : '';
      return { parts: text ? [text] : [], kind: 'fallback', text, effects: {} };
    },
    answer: async (req) => {
      if (matchesKeyword(req.text, o.keywords.reset)) {
        const text = o.replies.onReset;
        return { parts: [text], kind: 'command', text, effects: { conversation: null, rest: null } };
      }
      if (req.anyMessageContinues || matchesKeyword(req.text, o.keywords.continue)) {
        const rest = await o.store.get(keys.pendingRest(req.customer));
        if (rest) {
          if (req.anyMessageContinues) o.log.info({ traceId: req.traceId }, 'message fetches the pending answer (passive reply)');
          const planned = await plan(rest, 'formatted', 'answer', req).catch((e: unknown) => {
            if (req.signal.aborted) throw e;
            o.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'kept rest could not be formatted; sending fallback');
            return fallback(o.replies.onError, req);
          });
          if (planned) return planned;
        }
      }
      return askLlm(req);
    },
    apply: async (customer, effects) => {
      const writes: Promise<void>[] = [];
      const put = (key: string, value: string | null | undefined, ttlMs: number) => {
        if (value === null) writes.push(o.store.del(key));
        else if (value !== undefined) writes.push(o.store.set(key, value, ttlMs));
      };
      put(convKey(customer), effects.conversation, CONVERSATION_TTL_MS);
      put(keys.pendingRest(customer), effects.rest, REST_TTL_MS);
      await Promise.all(writes);
    },
  };
}

/**
 * Who is asking, from a customer key (`<channel>:<account>:<user>`; accounts and users contain no `:`).
 * @returns null for a key that is not one (tests' own keys)
 */
async function customerRefOf(key: string, identify?: (place: MessagePlace) => Promise<string>): Promise<CustomerRef | null> {
  const [channel, account, ...rest] = key.split(':');
  if (!channel || !account || rest.length === 0) return null;
  const place = { channel: channel as LogChannel, account, externalId: rest.join(':') };
  const id = identify ? await identify(place).catch(() => '') : '';
  return { id, ...place };
}

/** A stored conversation state; anything unreadable starts a new conversation rather than failing the answer. */
function parseState(stored: string | null): ConversationState | null {
  if (!stored) return null;
  try {
    const v: unknown = JSON.parse(stored);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as ConversationState) : null;
  } catch {
    return null;
  }
}

/** An LLM failure for the logs: kind, status, provider code and message; never the partial answer text. */
function describeLlmError(e: unknown): Record<string, unknown> {
  if (e instanceof LlmError) return { kind: e.kind, status: e.status, code: e.options.code ?? null, message: e.message };
  return { message: e instanceof Error ? e.message : String(e) };
}
