/**
 * The LLM adapter port (docs/providers.md §6). An adapter turns one customer message plus the
 * conversation state it returned last time into an answer. It never sends anything to the customer and never
 * retries: the caller (`llm/run.ts`) owns retries, the deadline and the fallback texts.
 */

/** Opaque per-customer state an adapter keeps between turns (history for OpenAI-style APIs). JSON-serialisable. */
export type ConversationState = Record<string, unknown>;

export interface ReplyRequest {
  /** stable id of the end user on one account, e.g. `kf:<open_kfid>:<external_userid>` */
  userId: string;
  /** the customer's text (for an image message: a short instruction such as the caption, may be empty) */
  text: string;
  /**
   * Images the customer sent with this turn (downloaded by the bridge, size-capped). Only passed to adapters
   * whose `acceptsImages` is true; never stored in conversation history.
   */
  images?: ImageInput[];
  /** what this adapter returned as `state` last time, or null for a new conversation */
  state: ConversationState | null;
  /** for logs and provider request ids, e.g. the inbound msgid */
  traceId: string;
  /**
   * Who is asking and where the message came from, for agents that keep no conversation of their own (the webhook
   * sends it as `customer`). Optional in the port; the webhook adapter refuses a request without it.
   */
  customer?: CustomerRef;
  /**
   * The turns before this one, oldest first, when the caller owns the conversation (an OpenAI-compatible `/v1`
   * request carries its own messages). When present (even empty), openai and ollama send it instead of the history
   * in `state` and return `state: null`; the webhook sends it as `history` and returns `state: null`; dify, coze and
   * echo ignore it. Text only: no images, no reasoning.
   */
  history?: ChatTurn[];
  /**
   * Called as the provider streams, with the whole visible answer so far: a snapshot, never a delta (Dify's
   * `message_replace` may rewrite earlier text, and a consumer that shows snapshots stays correct). Never includes
   * reasoning: leading `<think>…</think>` blocks (also with tags split across chunks; an unclosed one hides all that
   * follows), OpenAI `reasoning_content`, Ollama `thinking`, Dify agent thoughts, Coze non-answer messages. Called on
   * every visible change, synchronously from the stream parser, so it must be cheap (throttle in the consumer); an
   * exception it throws is swallowed, never failing the answer. Before `reply` resolves, the last snapshot equals
   * `stripReasoning(result.text) ?? ''` (src/format/reasoning.ts; no call at all when that is '' and nothing was shown).
   * Non-streaming agents (echo, webhook) call it once with the whole answer. Snapshots are provisional: when `reply`
   * rejects, what was shown is not an answer. It never changes the `ReplyResult`.
   */
  onText?: (visibleSoFar: string) => void;
}

/** Identifies the customer of a request (src/identity/types.ts): the operator's id and the platform identity. */
export interface CustomerRef {
  /** the operator's customer id, `cus_…` */
  id: string;
  /** `kf`, `mp`, `bot` or `openai-compat` (src/log/types.ts LogChannel) */
  channel: string;
  /** the account the message came to: `open_kfid` (kf), AppID (mp), the bot id (bot), `key<N>` (openai-compat) */
  account: string;
  /** `external_userid` (kf), `openid` (mp), the bot user (bot), the `/v1` request's `user` */
  externalId: string;
}

/** One earlier turn of a conversation the caller keeps (plain text). */
export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** One customer image, already downloaded (kf `media/get`, OA `media/get`/`PicUrl`). */
export interface ImageInput {
  /** the bytes, at most MEDIA_MAX_BYTES */
  data: Buffer;
  /** e.g. `image/jpeg`, `image/png` (sniffed from the bytes, not trusted from headers) */
  mime: string;
  /** a file name for providers whose upload wants one, e.g. `image.jpg` */
  name: string;
}

export interface Usage {
  inputTokens: number | null;
  outputTokens: number | null;
  totalTokens: number | null;
}

export interface ReplyResult {
  /** the complete answer (markdown allowed; formatting happens later) */
  text: string;
  /** state to store for the next turn (null: nothing to keep) */
  state: ConversationState | null;
  usage: Usage | null;
  finishReason: 'stop' | 'length' | 'filtered' | 'other';
  /** the provider's id of this answer for tracing with them (OpenAI x-request-id, Coze x-tt-logid, Dify task_id) */
  requestId?: string;
}

export interface LlmAdapter {
  /** provider name for logs and metrics, e.g. `openai` */
  readonly provider: string;
  /** whether answers are markdown to be turned into WeChat text (echo's are not: it repeats the customer verbatim) */
  readonly answersInMarkdown: boolean;
  /**
   * Whether `reply` passes `images` to the model (OpenAI-compatible with vision on, Dify, Coze, Ollama). When false
   * the bridge answers an image with the configured polite text instead of calling the adapter.
   */
  readonly acceptsImages: boolean;
  /**
   * @param signal aborts the call (deadline or shutdown); the adapter must stop reading and close the socket
   * @throws LlmError (see errors.ts); a stream that ends without its terminal event is `truncated`
   */
  reply(req: ReplyRequest, signal: AbortSignal): Promise<ReplyResult>;
}
