import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/types.js';
import type { NewJob } from '../store/memory-jobs.js';
import type { JobPayload, JobProgress } from './jobs.js';

export type { NewJob } from '../store/memory-jobs.js';

/**
 * Where customer messages wait to be answered, once each. Two implementations: the embedded one (memory job
 * records and an in-process runner; no REDIS_URL) and BullMQ on Redis (shared by every process, survives restarts).
 */
export interface JobQueue {
  readonly kind: 'memory' | 'bullmq';
  /**
   * Hands jobs off durably (as durable as the backing store). A job whose id was handed off before, within the
   * dedup window, is not added again.
   * @returns per job, true when it was created by this call, false when it already existed
   * @throws when the backing store is unreachable (callers answer 503 and the platform retries)
   */
  handOff(jobs: NewJob[]): Promise<boolean[]>;
  /** Re-runs work that needs a nudge (embedded: released and expired jobs; BullMQ: nothing, it has its own timers). */
  sweep(): Promise<void>;
  /**
   * Stops taking jobs, lets running ones finish for `graceMs` (ms), then aborts the rest and hands them back
   * (queued and due at once for the next process). Closes what the queue opened, never the store.
   */
  stop(graceMs: number): Promise<void>;
  /** jobs queued or running in this process */
  readonly size: number;
  /**
   * Jobs by state for `/admin/status`: `waiting` (not started), `active` (running), `delayed` (backing off after a
   * failure). BullMQ: the whole queue, every process; embedded: this process.
   * @throws when the backing store is unreachable
   */
  counts(): Promise<{ waiting: number; active: number; delayed: number }>;
}

/** What both queues are built with (deps.ts passes the same values to either). */
export interface QueueBaseOptions {
  /** the customer locks (and, with BullMQ, the "handed off" markers) */
  store: Store;
  log: Logger;
  metrics: Metrics;
  handler: JobHandler;
  /** lease per attempt, ms (LLM_TIMEOUT_MS + 30 s): the BullMQ lock or the memory claim, and the customer lock */
  leaseMs: number;
  /** how long a handed-off job (and so the msgid dedup) is remembered, ms */
  dedupTtlMs: number;
  /** jobs running at once in this process */
  concurrency: number;
  /** starts before a job gives up with the fallback; default MAX_JOB_ATTEMPTS (tests lower it) */
  maxAttempts?: number;
  /** ms after the hand-off past which a failing job gives up; default RETRY_WINDOW_MS (tests lower it) */
  retryWindowMs?: number;
  /** backoff after the n-th failed attempt, ms; default `retryDelayMs` (tests shorten it) */
  retryDelayMs?: (attemptsMade: number) => number;
}

/** What a handler gets for one attempt at a job. */
export interface JobContext {
  /** the readable id, `<channel>:<account>:<user>:<msgid>` */
  id: string;
  payload: JobPayload;
  /** 1 on the first start; more after a crash, a lost lease, a shutdown or a transient failure */
  attempts: number;
  /** epoch ms of the job's hand-off: the retry window (RETRY_WINDOW_MS) counts from it */
  firstAtMs: number;
  progress: JobProgress | null;
  /** aborted on shutdown or when the lease is lost: stop, send nothing more */
  signal: AbortSignal;
  /** @throws LeaseLostError when another process took the job over */
  saveProgress(progress: JobProgress): Promise<void>;
  log: Logger;
}

/** One channel's (or the dispatcher's) way of answering a job. */
export interface JobHandler {
  /** Handles one job to the end. Throws only for transient failures: the queue retries with backoff. */
  run(ctx: JobContext): Promise<void>;
  /**
   * The job's attempts ran out (its last attempt failed, or it was started too often): tell the customer
   * something (REPLY_ON_ERROR) as a best effort, so a message never ends in silence. Never throws.
   */
  giveUp(ctx: JobContext, cause: unknown): Promise<void>;
}

/** Thrown (or given as the abort reason) when the queue says another process now owns the job. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/** The abort reason of jobs cut short by a graceful shutdown. */
export class ShutdownError extends Error {
  override readonly name = 'ShutdownError';
}

/** Backoff before attempt `attemptsMade + 1` after a transient failure, ms: 2 s, 4 s, … capped at 5 minutes. */
export function retryDelayMs(attemptsMade: number): number {
  return Math.min(2 ** attemptsMade * 1000, 300_000);
}
