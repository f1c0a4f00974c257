/**
 * The message log port: every inbound customer message and every outbound message (one row per part), what the
 * operator API and the console read. Three stores implement it (memory, a capped Redis stream, MySQL); the
 * pipeline writes through `record`/`settle`, which never wait and never throw: writing the log must never delay or
 * stop a reply (docs/configuration.md "Message log").
 */

/** Where a message came from or went to (an OpenAI-compatible `/v1` caller is `openai-compat`). */
export type LogChannel = 'kf' | 'mp' | 'bot' | 'openai-compat';

/** An inbound row's status: `pending` until the pipeline decides. `skipped`: age, rate limit, a human holds it. */
export type InboundStatus = 'pending' | 'answered' | 'fallback' | 'command' | 'skipped' | 'failed';

/** An outbound row's `type`: the kind of reply. */
export type OutboundKind = 'answer' | 'fallback' | 'command' | 'welcome' | 'handoff' | 'operator';

/** An outbound row's status. */
export type OutboundStatus = 'sent' | 'failed';

/** One row as stored and as `/admin/messages` shows it. */
export interface LogRow {
  /** opaque, unique; rows sort newest first by it (a cursor is a row id) */
  id: string;
  /** ISO-8601 UTC, ms precision */
  at: string;
  direction: 'in' | 'out';
  channel: LogChannel;
  /** `open_kfid` (kf), AppID (mp), bot id (bot), `key<N>` (openai-compat) */
  account: string;
  /** `cus_…` (identity/types.ts) */
  customerId: string;
  /** `external_userid` (kf), `openid` (mp), the bot user (bot), the `/v1` request's `user` ('' when absent) */
  externalId: string;
  /** inbound: the platform's msgid; outbound: the part's own id (kf: the outbound msgid) */
  msgid: string;
  /** inbound: the message type (`text`, `image`, `file`, `link`, `location`, `voice`, …); outbound: an OutboundKind */
  type: string;
  /** text (media as a short description, never bytes); '' when LOG_MESSAGE_CONTENT=false */
  content: string;
  /** characters of the content, kept even when the content is not */
  length: number;
  /** InboundStatus or OutboundStatus */
  status: string;
  /** the agent that answered (inbound, once settled; outbound answers), else null */
  agent: string | null;
  /** ms the LLM took for this message (inbound, once settled), else null */
  latencyMs: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  /** outbound: the inbound msgid this part answers (null for an operator's message or a welcome without one) */
  replyTo: string | null;
  /** outbound failed: the platform's errcode when there was one */
  errcode: number | null;
}

/** What the pipeline records; the store assigns `id` and fills absent fields with null/''. */
export type NewLogRow = Omit<LogRow, 'id' | 'at' | 'length' | 'agent' | 'latencyMs' | 'inputTokens' | 'outputTokens' | 'replyTo' | 'errcode'> &
  Partial<Pick<LogRow, 'agent' | 'latencyMs' | 'inputTokens' | 'outputTokens' | 'replyTo' | 'errcode'>> & {
    /** epoch ms; default now */
    atMs?: number;
  };

/** Identifies an inbound row for `settle`. */
export interface InboundKey {
  channel: LogChannel;
  account: string;
  msgid: string;
}

/** What `settle` changes on an inbound row. */
export interface InboundSettlement {
  status: InboundStatus;
  agent?: string | null;
  latencyMs?: number | null;
  inputTokens?: number | null;
  outputTokens?: number | null;
}

/** `/admin/messages` filters; every field optional. Times are epoch ms, inclusive. */
export interface LogQuery {
  channel?: LogChannel;
  account?: string;
  customerId?: string;
  direction?: 'in' | 'out';
  status?: string;
  fromMs?: number;
  toMs?: number;
  /** free text: rows whose content contains it */
  text?: string;
  /** 1–200 */
  limit: number;
  /** the `nextCursor` of the previous page, or null for the first */
  cursor: string | null;
}

/** Inbound rows received in a window and how they ended (`/admin/status` lastHour). */
export interface LogCounts {
  received: number;
  answered: number;
  fallback: number;
  failed: number;
}

/** The log's state for `/admin/status` and metrics. */
export interface LogHealth {
  /** false while the backing store refuses writes (rows wait in the bounded buffer) */
  ok: boolean;
  /** rows waiting to be written */
  buffered: number;
  /** rows dropped since start (buffer full while the store was down) */
  dropped: number;
  /** the last write error's message while not ok */
  lastError: string | null;
}

/** The message log. */
export interface MessageLog {
  readonly kind: 'memory' | 'redis' | 'mysql';
  /** Queues a row for the batched writer. Never waits, never throws. */
  record(row: NewLogRow): void;
  /** Queues a status change of an inbound row (a row recorded later still gets it). Never waits, never throws. */
  settle(key: InboundKey, change: InboundSettlement): void;
  /**
   * Newest first.
   * @throws LogUnavailableError when the backing store cannot answer
   */
  query(q: LogQuery): Promise<{ items: LogRow[]; nextCursor: string | null }>;
  /** Inbound rows at or after `sinceMs` and their outcomes. @throws LogUnavailableError */
  counts(sinceMs: number): Promise<LogCounts>;
  /** Deletes every row of a customer (erasure). @returns rows deleted @throws LogUnavailableError */
  forgetCustomer(customerId: string): Promise<number>;
  health(): LogHealth;
  /** Waits until every queued row is written or dropped (tests, shutdown). */
  flush(): Promise<void>;
  /** Flushes, then stops timers and closes connections it owns. */
  close(): Promise<void>;
}

/** A reply whose attempts ran out: what `/admin/failures` lists and `replay` sends again. */
export interface FailedReply {
  /** opaque id */
  id: string;
  /** ISO-8601 UTC */
  at: string;
  channel: 'kf' | 'mp';
  account: string;
  customerId: string;
  externalId: string;
  /** the inbound msgid */
  msgid: string;
  /** every planned part, in order (image parts as their markers) */
  parts: string[];
  /** how many parts had been sent when it gave up */
  sent: number;
  /** the outbound ids of the parts (kf msgids), in order; [] for OA */
  partIds: string[];
  /** the last platform errcode, or null (transport failure) */
  errcode: number | null;
  /** the last error's message (no secrets) */
  reason: string;
  /** how many times an operator replayed it */
  replays: number;
}

/** The failures list (same backing store as the log). */
export interface FailureStore {
  /** Records a failure (an existing one with the same channel/account/msgid is replaced). */
  add(f: Omit<FailedReply, 'id' | 'at' | 'replays'> & { atMs?: number }): Promise<FailedReply>;
  /** Newest first. */
  list(limit: number, cursor: string | null): Promise<{ items: FailedReply[]; nextCursor: string | null }>;
  get(id: string): Promise<FailedReply | null>;
  /** After a successful replay: removes it. */
  remove(id: string): Promise<boolean>;
  /** After a failed replay: counts it and keeps the new errcode/reason. */
  update(id: string, change: { errcode: number | null; reason: string; sent: number }): Promise<void>;
  /** Deletes a customer's failures (erasure). */
  forgetCustomer(customerId: string): Promise<number>;
}

/** The backing store of the log cannot answer a query (MySQL down): the admin API answers 503. */
export class LogUnavailableError extends Error {
  override readonly name = 'LogUnavailableError';
}
