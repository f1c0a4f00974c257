/**
 * The batched writer's contract (writer.ts): what a store's sink implements, the tuning and its production
 * defaults, and the writer's own interface.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { PreparedRow } from './row.js';
import type { InboundKey, InboundSettlement, LogHealth } from './types.js';

/** A settlement waiting to be written. */
export interface PendingSettle {
  key: InboundKey;
  change: InboundSettlement;
}

/** Where batches go. Implemented by the MySQL and Redis stores. */
export interface LogSink {
  /**
   * Writes rows (in order, so ids follow recording order) and THEN the settlements (a settlement may be for a row
   * of the same batch). A batch is re-sent after any failure, so a write should be all-or-nothing or idempotent
   * (MySQL: INSERT IGNORE on a per-row key; Redis: MULTI).
   * @throws anything: the whole batch is retried after a backoff
   */
  write(rows: PreparedRow[], settles: PendingSettle[]): Promise<void>;
}

/** Tuning of the writer; every field has a default suited to production. */
export interface WriterOptions {
  /** rows and settlements waiting at most (a full buffer drops the oldest); default 10,000 */
  capacity: number;
  /** items per write; default 500 */
  batchSize: number;
  /** content characters per write (keeps one INSERT well under max_allowed_packet, 16 MiB by default); default 1,000,000 */
  batchChars: number;
  /** ms a row waits for others before a batch is written anyway; default 100 */
  delayMs: number;
  /** first retry after a failed write, ms; doubled per failure up to maxBackoffMs; defaults 250 and 30,000 */
  minBackoffMs: number;
  maxBackoffMs: number;
}

/** Production defaults (docs: the buffer holds 10,000 rows; retries back off from 250 ms to 30 s). */
export const WRITER_DEFAULTS: WriterOptions = {
  capacity: 10_000,
  batchSize: 500,
  batchChars: 1_000_000,
  delayMs: 100,
  minBackoffMs: 250,
  maxBackoffMs: 30_000,
};

/** The writer as the stores use it. */
export interface BatchWriter {
  /** Queues a row; never waits, never throws. Ignored after `close`. */
  record(row: PreparedRow): void;
  /** Queues a settlement, merged into the queued row or settlement of the same inbound message when there is one. */
  settle(key: InboundKey, change: InboundSettlement): void;
  /** Resolves once nothing is queued or in flight; a pending backoff is cut short once. Waits through an outage. */
  flush(): Promise<void>;
  /** Flushes for at most `graceMs` (ms), then stops; what is still queued counts as dropped. */
  close(graceMs: number): Promise<void>;
  health(): LogHealth;
}

/** What the MySQL and Redis logs share: the content policy, retention, logging and the batched writer. */
export interface LogStoreOptions {
  /** LOG_MESSAGE_CONTENT */
  logContent: boolean;
  /** MESSAGE_RETENTION_DAYS */
  retentionDays: number;
  log: Logger;
  metrics: Metrics;
  writer?: Partial<WriterOptions>;
  /** ms the writer keeps trying on `close` before counting what is left as dropped; default 5,000 */
  closeGraceMs?: number;
}
