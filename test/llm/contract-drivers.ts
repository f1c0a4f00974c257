/**
 * Drivers for the adapter contract suite (contract.test.ts): one per LLM provider. A driver starts that
 * provider's protocol-faithful fake (test/fakes/*), builds the real adapter pointing at it over loopback HTTP,
 * translates the suite's provider-neutral {@link Scenario}s into the fake's own behaviours, and reads back what the
 * adapter sent (conversation id or history) from the fake's recorded requests.
 */
import axios from 'axios';
import { expect } from 'vitest';
import { LlmError } from '../../src/errors.js';
import { createCozeAdapter } from '../../src/llm/coze.js';
import { createDifyAdapter } from '../../src/llm/dify.js';
import { createOllamaAdapter } from '../../src/llm/ollama.js';
import { createOpenAiAdapter } from '../../src/llm/openai.js';
import type { ConversationState, CustomerRef, ImageInput, LlmAdapter, ReplyRequest, Usage } from '../../src/llm/types.js';
import { createWebhookAdapter } from '../../src/llm/webhook.js';
import { startFakeCoze, type FakeCozeBehavior } from '../fakes/coze.js';
import { startFakeDify, type FakeDifyBehavior } from '../fakes/dify.js';
import { startFakeOllama, type FakeOllamaBehavior } from '../fakes/ollama.js';
import { startFakeOpenAI, type FakeOpenAIBehavior } from '../fakes/openai.js';
import { startFakeWebhook, type FakeWebhookBehavior } from '../fakes/webhook.js';

export const USER_ID = 'kf:wkAAA:wmBBB';
export const OPENAI_KEY = 'sk-contract-secret';
export const OPENAI_MODEL = 'gpt-4o-mini';
export const DIFY_KEY = 'app-contract-secret';
export const COZE_TOKEN = 'pat_contract_secret';
export const COZE_BOT = '7400000000000000001';
export const OLLAMA_MODEL = 'qwen2.5:7b';
export const SYSTEM = '你是客服助手。';
export const WEBHOOK_TOKEN = 'whk_contract_secret';
/** The customer every contract request names (the webhook sends it; the other adapters ignore it). */
export const CUSTOMER: CustomerRef = { id: 'cus_abcdefghijklmnopqrst', channel: 'kf', account: 'wwCORP', externalId: 'wmBBB' };

/** A provider-neutral thing the fake should do with the next accepted chat request. "Deltas" are text deltas;
 *  without `text` the fake answers its default (see {@link Harness.defaultAnswer}), 4 code points per delta. */
export type Scenario =
  | { kind: 'answer'; text: string; chunkSize?: number; delayMs?: number; firstByteDelayMs?: number }
  | { kind: 'status'; status: number }
  /** the provider's way of refusing the credentials (Coze: HTTP 200 envelope code 4100) */
  | { kind: 'auth' }
  /** the provider's way of saying "too many requests" (OpenAI: 429 with retry-after 2 s; Coze: envelope 4013) */
  | { kind: 'rate-limit' }
  /** the provider's in-stream error (OpenAI error frame, Dify/Coze `error` event, Ollama `{"error"}` line) */
  | { kind: 'error-mid'; afterDeltas: number }
  | { kind: 'drop'; afterDeltas: number }
  | { kind: 'hang' }
  | { kind: 'truncate'; afterDeltas: number }
  | { kind: 'invalid-json'; afterDeltas: number };

/** Providers that keep the conversation server-side: the state is `{conversationId}`. */
export interface ConversationOps {
  kind: 'conversation';
  /** the conversation id chat request `i` named (null: none, a new conversation) */
  sentId(i: number): string | null;
  /** the most recently issued conversation id */
  newestId(): string | undefined;
  /** makes the fake forget `id` (the provider's "conversation not found" from then on) */
  expire(id: string): void;
  /** the user turns the fake stored in conversation `id`, oldest first */
  userTurns(id: string): string[];
}

/** Agents that keep their own state and hand it to the bridge (the webhook): sent back as it came. */
export interface OpaqueOps {
  kind: 'opaque';
  /** the state request `i` carried (null: none) */
  sentState(i: number): unknown;
  /** the state the fake answered request `i` with */
  answeredState(i: number): unknown;
}

/** Providers whose history the bridge keeps: the state is `{history}` and is sent back as `messages`. */
export interface HistoryOps {
  kind: 'history';
  systemPrompt: string | null;
  /** the `messages` chat request `i` carried */
  sentMessages(i: number): unknown;
}

/** One running fake plus everything the suite needs to know about it. */
export interface Harness {
  /** `anonymous`: built without credentials (only for a driver whose `credential.optional` is true) */
  adapter(o?: { idleMs?: number; anonymous?: boolean }): LlmAdapter;
  script(...s: Scenario[]): void;
  /** what the fake answers to `question` for a scenario without its own text */
  defaultAnswer(question: string): string;
  /** the usage the adapter must report for a first-turn `question` answered with `answer` */
  usage(question: string, answer: string): Usage | null;
  requestCount(): number;
  /** every image's bytes as the provider received them, over all requests so far (uploads or inline), in order */
  receivedImages(): Buffer[];
  waitForRequests(n: number): Promise<void>;
  closedByClient(i: number): boolean;
  /** the Authorization header of request `i` (undefined: none) */
  authorization(i: number): string | undefined;
  /** the parsed body of request `i` as the provider received it */
  sentBody(i: number): unknown;
  state: ConversationOps | HistoryOps | OpaqueOps;
  close(): Promise<void>;
}

export interface Driver {
  name: string;
  /**
   * capability: the answer streams as deltas, so a failure can carry partial text (all but the webhook, which answers
   * one JSON document: its failures never have partial text)
   */
  streams: boolean;
  /** the Authorization header the adapter sends (null: none); `optional`: the adapter also works without one */
  credential: { header: string | null; optional: boolean };
  /** capability: the adapter drops an expired stored conversation and retries once (Dify, Coze) */
  recoversExpiredConversation: boolean;
  /** whether the first text delta of a slow (`delayMs`) answer arrives at once (Dify's fake waits before it) */
  firstDeltaImmediate: boolean;
  /** expected `status` and provider `code` of the auth failure */
  auth: { status: number | null; code: string | null };
  /** expected `status`, provider `code` and `retryAfterMs` of the rate-limit failure */
  rateLimit: { status: number | null; code: string | null; retryAfterMs: number | null };
  start(): Promise<Harness>;
}

export const cps = (s: string): number => Array.from(s).length;
export const req = (text: string, state: ConversationState | null = null, userId = USER_ID): ReplyRequest => ({ userId, text, state, traceId: 'msg-1', customer: CUSTOMER });
/** A real 1×1 PNG (RGBA, one opaque pixel): 70 bytes with a valid signature, IHDR, IDAT and IEND. */
export const PNG_1X1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
export const png = (name = 'image.png'): ImageInput => ({ data: PNG_1X1, mime: 'image/png', name });
/** A request carrying images (default: the 1×1 PNG). */
export const imageReq = (text: string, images: ImageInput[] = [png()], state: ConversationState | null = null, userId = USER_ID): ReplyRequest =>
  ({ ...req(text, state, userId), images });
export const never = (): AbortSignal => new AbortController().signal;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
}
/** The LlmError a call rejects with (fails the test if it resolves or rejects with something else). */
export async function failure(p: Promise<unknown>): Promise<LlmError> {
  const e = await p.then(
    (v) => new Error(`expected a failure, got ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LlmError);
  return e as LlmError;
}
const usage = (i: number, o: number): Usage => ({ inputTokens: i, outputTokens: o, totalTokens: i + o });
const http = (baseURL: string) => axios.create({ baseURL });

const authOf = (headers: Record<string, string | string[] | undefined> | undefined): string | undefined => {
  const v = headers?.authorization;
  return Array.isArray(v) ? v[0] : v;
};

const openai: Driver = {
  name: 'openai',
  streams: true,
  credential: { header: `Bearer ${OPENAI_KEY}`, optional: false },
  recoversExpiredConversation: false,
  firstDeltaImmediate: true,
  auth: { status: 401, code: 'invalid_api_key' },
  rateLimit: { status: 429, code: 'rate_limit_exceeded', retryAfterMs: 2000 },
  async start() {
    const fake = await startFakeOpenAI({ apiKey: OPENAI_KEY, model: OPENAI_MODEL });
    const map = (s: Scenario): FakeOpenAIBehavior => {
      switch (s.kind) {
        case 'auth': return { kind: 'status', status: 401 };
        case 'rate-limit': return { kind: 'status', status: 429, retryAfterS: 2 };
        case 'error-mid': return { kind: 'error-frame', afterDeltas: s.afterDeltas };
        default: return s;
      }
    };
    return {
      adapter: (o = {}) => createOpenAiAdapter({ http: http(fake.baseUrl), apiKey: OPENAI_KEY, model: OPENAI_MODEL, systemPrompt: SYSTEM, idleMs: o.idleMs, vision: true }),
      script: (...s) => fake.script(...s.map(map)),
      defaultAnswer: (q) => `AI:${q}`,
      usage: (q, a) => usage(cps(SYSTEM) + cps(q), cps(a)),
      requestCount: () => fake.requests.length,
      receivedImages: () => fake.requests.flatMap((r) => r.images.flatMap((i) => (i.data ? [i.data] : []))),
      waitForRequests: (n) => fake.waitForRequests(n),
      closedByClient: (i) => fake.requests[i]?.closedByClient === true,
      authorization: (i) => authOf(fake.requests[i]?.headers),
      sentBody: (i) => fake.requests[i]?.body,
      state: { kind: 'history', systemPrompt: SYSTEM, sentMessages: (i) => fake.requests[i]?.body.messages },
      close: () => fake.close(),
    };
  },
};

const dify: Driver = {
  name: 'dify',
  streams: true,
  credential: { header: `Bearer ${DIFY_KEY}`, optional: false },
  recoversExpiredConversation: true,
  firstDeltaImmediate: false,
  auth: { status: 401, code: 'unauthorized' },
  rateLimit: { status: 429, code: 'too_many_requests', retryAfterMs: null },
  async start() {
    const fake = await startFakeDify({ apiKey: DIFY_KEY });
    const map = (s: Scenario): FakeDifyBehavior => {
      switch (s.kind) {
        case 'auth': return { kind: 'status', status: 401 };
        case 'rate-limit': return { kind: 'status', status: 429 };
        case 'error-mid': return { kind: 'error-event', afterDeltas: s.afterDeltas };
        default: return s;
      }
    };
    return {
      adapter: (o = {}) => createDifyAdapter({ http: http(fake.baseUrl), apiKey: DIFY_KEY, idleMs: o.idleMs }),
      script: (...s) => fake.script(...s.map(map)),
      defaultAnswer: (q) => `Dify:${q}`,
      usage: (q, a) => usage(cps(q), cps(a)),
      requestCount: () => fake.requests.length,
      receivedImages: () => fake.uploads.map((u) => u.data),
      waitForRequests: (n) => fake.waitForRequests(n),
      closedByClient: (i) => fake.requests[i]?.closedByClient === true,
      authorization: (i) => authOf(fake.requests[i]?.headers),
      sentBody: (i) => fake.requests[i]?.body,
      state: {
        kind: 'conversation',
        sentId: (i) => (fake.requests[i]?.body.conversation_id as string | undefined) ?? null,
        newestId: () => fake.conversationsOf(USER_ID).at(-1)?.id,
        expire: (id) => fake.expireConversation(id),
        userTurns: (id) => fake.conversation(id)?.turns.map((t) => t.query) ?? [],
      },
      close: () => fake.close(),
    };
  },
};

const coze: Driver = {
  name: 'coze',
  streams: true,
  credential: { header: `Bearer ${COZE_TOKEN}`, optional: false },
  recoversExpiredConversation: true,
  firstDeltaImmediate: true,
  auth: { status: null, code: '4100' },
  rateLimit: { status: null, code: '4013', retryAfterMs: null },
  async start() {
    const fake = await startFakeCoze({ token: COZE_TOKEN, botId: COZE_BOT });
    const map = (s: Scenario): FakeCozeBehavior => {
      switch (s.kind) {
        case 'auth': return { kind: 'envelope', code: 4100, msg: 'authentication failed' };
        case 'rate-limit': return { kind: 'envelope', code: 4013, msg: 'request rate exceeded' };
        case 'error-mid': return { kind: 'error-event', afterDeltas: s.afterDeltas, code: 5000, msg: 'internal error' };
        default: return s;
      }
    };
    return {
      adapter: (o = {}) => createCozeAdapter({ http: http(fake.baseUrl), apiToken: COZE_TOKEN, botId: COZE_BOT, idleMs: o.idleMs }),
      script: (...s) => fake.script(...s.map(map)),
      defaultAnswer: (q) => `Coze:${q}`,
      usage: (q, a) => usage(cps(q), cps(a)),
      requestCount: () => fake.requests.length,
      receivedImages: () => [...fake.files.values()].map((f) => f.data),
      waitForRequests: (n) => fake.waitForRequests(n),
      closedByClient: (i) => fake.requests[i]?.closedByClient === true,
      authorization: (i) => authOf(fake.requests[i]?.headers),
      sentBody: (i) => fake.requests[i]?.body,
      state: {
        kind: 'conversation',
        sentId: (i) => fake.requests[i]?.query.conversation_id ?? null,
        newestId: () => [...fake.conversations.keys()].at(-1),
        expire: (id) => fake.expireConversation(id),
        userTurns: (id) => fake.conversations.get(id)?.turns.filter((t) => t.role === 'user').map((t) => t.content) ?? [],
      },
      close: () => fake.close(),
    };
  },
};

const ollama: Driver = {
  name: 'ollama',
  streams: true,
  // Ollama has no authentication of its own.
  credential: { header: null, optional: false },
  recoversExpiredConversation: false,
  firstDeltaImmediate: true,
  // No auth of its own: a reverse proxy in front of it answers 401/429 with a plain body.
  auth: { status: 401, code: null },
  rateLimit: { status: 429, code: null, retryAfterMs: null },
  async start() {
    const fake = await startFakeOllama({ models: [OLLAMA_MODEL] });
    const map = (s: Scenario): FakeOllamaBehavior => {
      switch (s.kind) {
        case 'auth': return { kind: 'status', status: 401 };
        case 'rate-limit': return { kind: 'status', status: 429 };
        case 'error-mid': return { kind: 'error-line', afterDeltas: s.afterDeltas };
        default: return s;
      }
    };
    return {
      adapter: (o = {}) => createOllamaAdapter({ http: http(fake.baseUrl), model: OLLAMA_MODEL, systemPrompt: SYSTEM, idleMs: o.idleMs }),
      script: (...s) => fake.script(...s.map(map)),
      defaultAnswer: (q) => `Ollama:${q}`,
      usage: (q, a) => usage(cps(SYSTEM) + cps(q), cps(a)),
      requestCount: () => fake.requests.length,
      receivedImages: () => fake.requests.flatMap((r) => r.images.map((i) => i.data)),
      waitForRequests: (n) => fake.waitForRequests(n),
      closedByClient: (i) => fake.requests[i]?.closedByClient === true,
      authorization: (i) => authOf(fake.requests[i]?.headers),
      sentBody: (i) => fake.requests[i]?.body,
      state: { kind: 'history', systemPrompt: SYSTEM, sentMessages: (i) => fake.requests[i]?.body.messages },
      close: () => fake.close(),
    };
  },
};

const webhook: Driver = {
  name: 'webhook',
  streams: false,
  credential: { header: `Bearer ${WEBHOOK_TOKEN}`, optional: true },
  recoversExpiredConversation: false,
  firstDeltaImmediate: false,
  // Plain HTTP statuses with a `{"error": "…"}` body: no provider code.
  auth: { status: 401, code: null },
  rateLimit: { status: 429, code: null, retryAfterMs: 2000 },
  async start() {
    // Takes any caller, so one fake serves the adapter with the token and the anonymous one; what each sent is recorded.
    const fake = await startFakeWebhook({ token: null });
    const map = (s: Scenario): FakeWebhookBehavior => {
      switch (s.kind) {
        case 'answer': return { kind: 'answer', answer: s.text, delayMs: s.delayMs, firstByteDelayMs: s.firstByteDelayMs };
        case 'auth': return { kind: 'status', status: 401 };
        case 'rate-limit': return { kind: 'status', status: 429, retryAfterS: 2 };
        // An agent that failed but answered 200: an error object instead of an answer.
        case 'error-mid': return { kind: 'raw', body: JSON.stringify({ error: 'agent failed' }) };
        case 'invalid-json': return { kind: 'raw', body: '{"answer": "Webhook:' };
        case 'drop': return { kind: 'drop' };
        case 'truncate': return { kind: 'truncate' };
        default: return s;
      }
    };
    return {
      adapter: (o = {}) => createWebhookAdapter({ http: http(fake.url), token: o.anonymous ? null : WEBHOOK_TOKEN, idleMs: o.idleMs }),
      script: (...s) => fake.script(...s.map(map)),
      defaultAnswer: (q) => `Webhook:${q}`,
      usage: () => null,
      requestCount: () => fake.requests.length,
      receivedImages: () => fake.requests.flatMap((r) => r.images.map((i) => i.data)),
      waitForRequests: (n) => fake.waitForRequests(n),
      closedByClient: (i) => fake.requests[i]?.closedByClient === true,
      authorization: (i) => authOf(fake.requests[i]?.headers),
      sentBody: (i) => fake.requests[i]?.body,
      state: { kind: 'opaque', sentState: (i) => fake.requests[i]?.body.state, answeredState: (i) => fake.requests[i]?.answeredState },
      close: () => fake.close(),
    };
  },
};

export const DRIVERS: readonly Driver[] = [openai, dify, coze, ollama, webhook];
