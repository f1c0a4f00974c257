import type { Store } from '../store/types.js';
import { keys } from '../store/keys.js';
import type { JobContext, JobHandler } from './job-queue.js';
import { orderKeyOf } from './jobs.js';
import type { Metrics } from '../metrics.js';

/** How often a job waiting for its customer's lock (held by another process) tries again. */
const LOCK_POLL_MS = 50;

export interface AttemptDeps {
  store: Store;
  handler: JobHandler;
  /** customer lock lifetime, ms; renewed every third of it while the attempt runs */
  leaseMs: number;
  /** starts allowed before giving up (MAX_JOB_ATTEMPTS; tests lower it) */
  maxAttempts: number;
  /** ms after the hand-off past which a failing job gives up (RETRY_WINDOW_MS; tests lower it) */
  retryWindowMs: number;
  metrics: Pick<Metrics, 'jobsGivenUp'>;
}

/**
 * One attempt at a job, shared by both queues: waits for the customer's lock (one job per customer at a time
 * across processes, so a reply is planned from the state the customer's previous reply left), then runs the
 * handler. When the attempts run out the handler's `giveUp` answers instead, the job ends and
 * `bridge_jobs_given_up_total{channel}` counts it: a failure once `retryWindowMs` has passed since the hand-off or on
 * the `maxAttempts`-th start, or a retry that starts after either (a first start always runs, however late).
 * @param owner the lock owner value of this process
 * @param onEnded runs when the job ended (done or gave up), side by side with the lock's release: the queue's own
 *   bookkeeping (BullMQ mode: dropping the customer's order ticket) costs no round trip of its own. Its errors are
 *   the caller's to catch.
 * @returns `done` (the job finished) or `gave_up` (attempts ran out; the fallback was tried)
 * @throws the handler's error when more attempts remain, or the signal's reason when aborted (lease lost, shutdown)
 */
export async function runAttempt(d: AttemptDeps, ctx: JobContext, owner: string, onEnded?: () => Promise<void>): Promise<'done' | 'gave_up'> {
  const lockKey = keys.customerLock(orderKeyOf(ctx.id));
  let locked = false;
  let outcome: 'done' | 'gave_up' | null = null;
  const renew = setInterval(() => {
    if (locked) d.store.renewLock(lockKey, owner, d.leaseMs).catch(() => undefined);
  }, Math.max(100, Math.floor(d.leaseMs / 3)));
  try {
    locked = await waitForLock(d.store, lockKey, owner, d.leaseMs, ctx.signal);
    const overdue = () => Date.now() - ctx.firstAtMs >= d.retryWindowMs;
    if (ctx.attempts > d.maxAttempts || (ctx.attempts > 1 && overdue())) {
      await giveUp(d, ctx, new Error(`started ${ctx.attempts} times over ${Math.round((Date.now() - ctx.firstAtMs) / 1000)} s`));
      return (outcome = 'gave_up');
    }
    try {
      await d.handler.run(ctx);
      return (outcome = 'done');
    } catch (e) {
      if (ctx.signal.aborted || (ctx.attempts < d.maxAttempts && !overdue())) throw e;
      await giveUp(d, ctx, e);
      return (outcome = 'gave_up');
    }
  } finally {
    clearInterval(renew);
    await Promise.all([locked ? d.store.releaseLock(lockKey, owner).catch(() => false) : null, outcome && onEnded ? onEnded() : null]);
  }
}

async function giveUp(d: AttemptDeps, ctx: JobContext, cause: unknown): Promise<void> {
  d.metrics.jobsGivenUp.inc({ channel: ctx.payload.channel });
  ctx.log.error({ err: cause, attempts: ctx.attempts }, 'attempts ran out; answering with the fallback');
  try {
    await d.handler.giveUp(ctx, cause);
  } catch (e) {
    ctx.log.error({ err: e }, 'fallback after the last attempt failed');
  }
}

/**
 * Takes the lock, waiting while another process holds it. A lock still held under this process's owner (a
 * release that failed) is taken over: the queue already runs one job per customer here.
 * @returns true once held @throws the signal's reason
 */
async function waitForLock(store: Store, key: string, owner: string, ttlMs: number, signal: AbortSignal): Promise<boolean> {
  while (!((await store.acquireLock(key, owner, ttlMs)) || (await store.renewLock(key, owner, ttlMs)))) {
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  return true;
}
