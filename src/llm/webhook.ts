import type { AxiosInstance } from 'axios';
import { LlmError } from '../errors.js';
import { llmErrorFromStream } from './http-errors.js';
import { readText } from './stream.js';
import { headerOf, postStream } from './transport.js';
import type { ChatTurn, ConversationState, CustomerRef, LlmAdapter, ReplyResult } from './types.js';
import { trackVisibleText } from './visible-text.js';

export interface WebhookOptions {
  /** axios instance whose baseURL is the webhook's full URL (its path and query are kept as they are) */
  http: AxiosInstance;
  /** sent as `Authorization: Bearer <token>`; null: no Authorization header at all */
  token: string | null;
  /**
   * longest silence while the answer body arrives, ms (default 30 s). The wait for the response headers (the agent
   * thinking) is bounded only by the caller's deadline.
   */
  idleMs?: number;
}

/** What the bridge POSTs to the webhook (docs/providers.md §8). */
export interface WebhookRequestBody {
  customer: CustomerRef;
  message: {
    /** `image` when images come with it, else `text` */
    type: 'text' | 'image';
    /** the customer's text (an image's caption, possibly '') */
    text: string;
    /** the images, base64 without a `data:` prefix; [] for a text message */
    images: Array<{ mime: string; base64: string }>;
  };
  /** what the webhook last answered as `state`; null on a customer's first message and after a reset */
  state: unknown;
  /** only for an OpenAI-compatible `/v1` call: the turns before `message`, oldest first */
  history?: ChatTurn[];
}

/** The most a webhook `state` may take, serialised compactly (JSON.stringify) as UTF-8, bytes. */
export const WEBHOOK_STATE_MAX_BYTES = 16 * 1024;
/** The most a webhook answer body may take, bytes (the same cap as a whole OpenAI-compatible JSON answer). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const PROVIDER = 'webhook';
/**
 * The webhook's state sits under this key of the bridge's conversation state: any JSON (a string, an array, null)
 * fits, and a state another agent left behind (no such key) reads as none.
 */
const STATE_KEY = 'webhook';

/**
 * The operator's own HTTP endpoint as the agent (docs/providers.md §8): one JSON POST per customer
 * message ({@link WebhookRequestBody}) to the configured URL with `Authorization: Bearer <token>` when a token is set;
 * the answer must be a 2xx JSON object `{answer, state?}`. `answer` (a string with visible text, markdown) is the
 * reply. `state` (any JSON, at most 16 KB serialised) comes back as `state` with the customer's next message; left
 * out, the stored one stays; `null` clears it. With `req.history` (a `/v1` call) the body gets `history` and the
 * result's state is null (the caller keeps that conversation). Redirects are not followed (the body and the token
 * would go elsewhere). `onText` is called once, with the whole answer.
 * @throws LlmError: `bad_request` without `req.customer`; transport failures retryable `upstream` naming the host; HTTP
 *   errors as `llmErrorFromHttp` maps them (401/403 `auth`, 404 `not_found`, 429 `rate_limit` and 5xx `upstream`
 *   retryable, other 4xx `bad_request`); a 3xx `bad_request`; a body that is not a JSON object, an `answer` that is
 *   missing, not a string or blank, a `state` over 16 KB, a body over 4 MB: `protocol`, not retryable; `aborted`;
 *   no body byte for `idleMs` after the headers: retryable `upstream`
 */
export function createWebhookAdapter(o: WebhookOptions): LlmAdapter {
  const idleMs = o.idleMs ?? 30_000;
  return {
    provider: PROVIDER,
    answersInMarkdown: true,
    acceptsImages: true,
    reply: async (req, signal) => {
      const c = req.customer;
      if (!c) throw new LlmError('bad_request', 'webhook: the request names no customer (ReplyRequest.customer is required)');
      const body: WebhookRequestBody = {
        // Field by field: nothing else the caller put on the object goes out.
        customer: { id: c.id, channel: c.channel, account: c.account, externalId: c.externalId },
        message: {
          type: req.images?.length ? 'image' : 'text',
          text: req.text,
          images: (req.images ?? []).map((img) => ({ mime: img.mime, base64: img.data.toString('base64') })),
        },
        state: webhookStateOf(req.state),
        ...(req.history ? { history: req.history.map(({ role, content }) => ({ role, content })) } : {}),
      };
      const res = await postStream(o.http, PROVIDER, {
        path: '',
        body,
        headers: { accept: 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
        signal,
        maxRedirects: 0,
      });
      if (res.status < 200 || res.status > 299) {
        res.body.destroy();
        throw new LlmError('bad_request', `webhook: HTTP ${res.status} (redirects are not followed: configure the final URL)`, { status: res.status });
      }
      let text: string;
      try {
        text = await readText(res.body, PROVIDER, { signal, idleMs, maxBytes: MAX_BODY_BYTES });
      } catch (e) {
        throw llmErrorFromStream(PROVIDER, e, signal, '');
      }
      const answer = parseAnswer(text, res.status);
      trackVisibleText(req.onText).finish(answer.text);
      const requestId = headerOf(res.headers, 'x-request-id');
      const state = req.history || !answer.hasState ? null : { [STATE_KEY]: answer.state };
      const result: ReplyResult = { text: answer.text, state, usage: null, finishReason: 'stop' };
      return requestId ? { ...result, requestId } : result;
    },
  };
}

/** The webhook's own state out of the stored conversation state; null when there is none (or another agent's). */
function webhookStateOf(state: ConversationState | null): unknown {
  return state && Object.hasOwn(state, STATE_KEY) ? (state[STATE_KEY] ?? null) : null;
}

/** Checks a 2xx body. @throws LlmError `protocol` (not retryable) with what is wrong, never the body itself */
function parseAnswer(bodyText: string, status: number): { text: string; hasState: boolean; state: unknown } {
  const fail = (what: string) => new LlmError('protocol', `webhook: HTTP ${status} answer ${what}`, { status });
  let v: unknown;
  try {
    v = JSON.parse(bodyText);
  } catch {
    throw fail('is not JSON');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw fail('is not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.answer !== 'string') throw fail('has no string "answer"');
  if (o.answer.trim() === '') throw fail('has an empty "answer"');
  const hasState = Object.hasOwn(o, 'state');
  if (hasState) {
    const bytes = Buffer.byteLength(JSON.stringify(o.state));
    if (bytes > WEBHOOK_STATE_MAX_BYTES) throw fail(`has a "state" of ${bytes} bytes, over ${WEBHOOK_STATE_MAX_BYTES}`);
  }
  return { text: o.answer, hasState, state: o.state };
}
