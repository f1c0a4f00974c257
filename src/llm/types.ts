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
