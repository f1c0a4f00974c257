import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';
import { createKeyedSerial } from './keyed-serial.js';
import { orderKeyOf, type JobPayload, type JobProgress } from './jobs.js';

/** What a handler gets for one claimed job. */
export interface JobContext {
  id: string;
  payload: JobPayload;
  /** 1 on the first claim; more after a crash, a lost lease or a transient failure */
  attempts: number;
  progress: JobProgress | null;
  /** aborted on shutdown or when the lease is lost: stop, send nothing more */
  signal: AbortSignal;
  /** @throws LeaseLostError when another process took the job over */
  saveProgress(progress: JobProgress): Promise<void>;
  log: Logger;
}

/** Handles one job to the end (throws only for transient failures; the runner then retries with backoff). */
export type JobHandler = (ctx: JobContext) => Promise<void>;

/** How often a job waiting for its customer's lock (held by another process) tries again. */
const LOCK_POLL_MS = 50;

/**
 * Takes the lock, waiting while another process holds it. A lock still held under this process's owner (a
 * release that failed) is taken over: the keyed serial already runs one job per customer here.
 * @returns true once held @throws the signal's reason
 */
async function waitForLock(store: Store, key: string, owner: string, ttlMs: number, signal: AbortSignal): Promise<boolean> {
  while (!((await store.acquireLock(key, owner, ttlMs)) || (await store.renewLock(key, owner, ttlMs)))) {
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  return true;
}

/** Thrown when the store says another process now owns the job (our lease expired). */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

export interface Runner {
  /** Runs freshly handed-off jobs in this process, in order per customer. */
  submit(ids: string[]): void;
  /** Claims and runs jobs whose lease expired (crashed or released attempts). @returns how many were submitted */
  sweep(limit?: number): Promise<number>;
  /** Stops taking work, lets running jobs finish for `graceMs`, then aborts and releases the rest. */
  stop(graceMs: number): Promise<void>;
  /** ids queued or running here */
  readonly size: number;
}

export interface RunnerOptions {
  store: Store;
  log: Logger;
  metrics: Metrics;
  handle: JobHandler;
  /** lease per claim, ms (LLM_TIMEOUT_MS + 30 s); renewed every third of it while the job runs */
  leaseMs: number;
  /** jobs running at once in this process */
  concurrency: number;
}

/**
 * The in-process worker over durable job records: claim under a lease (so one process runs a job at a time
 * and a crashed attempt is re-run after its lease), renew while working, complete (never re-run), or release
 * with backoff after a transient failure. Owned by main/deps; no module state.
 */
export function createRunner(o: RunnerOptions): Runner {
  const owner = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const limit = pLimit(o.concurrency);
  const serial = createKeyedSerial();
  const local = new Set<string>();
  const submittedAt = new Map<string, number>();
  const running = new Map<string, AbortController>();
  const stopping = new AbortController();
  let waiting = 0;

  const runOne = async (id: string) => {
    const claim = await o.store.claim(id, owner, o.leaseMs);
    if (claim.status !== 'claimed') return;
    const since = submittedAt.get(id);
    if (since !== undefined) o.metrics.jobLag.observe((performance.now() - since) / 1000);
    let payload: JobPayload;
    try {
      payload = JSON.parse(claim.job.payload) as JobPayload;
    } catch {
      // Unreadable (written by an incompatible version?): finishing it beats re-running it for 4 days.
      o.log.error({ jobId: id }, 'job payload is not JSON; dropping the job');
      await o.store.complete(id, owner);
      return;
    }
    const ctrl = new AbortController();
    running.set(id, ctrl);
    const lockKey = keys.customerLock(orderKeyOf(id));
    let locked = false;
    const renew = setInterval(() => {
      o.store.renewJob(id, owner, o.leaseMs).then(
        (held) => held || ctrl.abort(new LeaseLostError(`lease on ${id} lost`)),
        (e: unknown) => o.log.warn({ err: e, jobId: id }, 'lease renewal failed'),
      );
      if (locked) o.store.renewLock(lockKey, owner, o.leaseMs).catch(() => undefined);
    }, Math.max(100, Math.floor(o.leaseMs / 3)));
    const log = o.log.child({ jobId: id, channel: payload.channel, msgid: payload.msgid });
    try {
      // One job per customer at a time across processes too (the keyed serial covers this process only), so a
      // reply is planned from the state the customer's previous reply left (history, a kept answer, a rest).
      locked = await waitForLock(o.store, lockKey, owner, o.leaseMs, ctrl.signal);
      await o.handle({
        id,
        payload,
        attempts: claim.job.attempts,
        progress: claim.job.progress ? (JSON.parse(claim.job.progress) as JobProgress) : null,
        signal: ctrl.signal,
        log,
        saveProgress: async (p) => {
          if (!(await o.store.saveProgress(id, owner, JSON.stringify(p)))) throw new LeaseLostError(`lease on ${id} lost`);
        },
      });
      if (!(await o.store.complete(id, owner))) log.warn('job finished after its lease was lost');
    } catch (e) {
      if (ctrl.signal.reason instanceof LeaseLostError || e instanceof LeaseLostError) {
        log.warn('lease lost; another process runs this job');
      } else if (stopping.signal.aborted) {
        await o.store.releaseJob(id, owner, 0).catch(() => undefined);
        log.info('job released for the next process (shutdown)');
      } else {
        const delayMs = Math.min(2 ** claim.job.attempts * 1000, 300_000);
        log.error({ err: e, attempts: claim.job.attempts, retryInMs: delayMs }, 'job failed; will retry');
        await o.store.releaseJob(id, owner, delayMs).catch(() => undefined);
      }
    } finally {
      clearInterval(renew);
      running.delete(id);
      if (locked) await o.store.releaseLock(lockKey, owner).catch(() => undefined);
    }
  };

  const submitOne = (id: string) => {
    if (local.has(id) || stopping.signal.aborted) return;
    local.add(id);
    submittedAt.set(id, performance.now());
    waiting += 1;
    o.metrics.jobsWaiting.set(waiting);
    const task = () =>
      limit(async () => {
        waiting -= 1;
        o.metrics.jobsWaiting.set(waiting);
        if (stopping.signal.aborted) return;
        await runOne(id);
      });
    serial
      .run(orderKeyOf(id), task)
      .catch((e: unknown) => o.log.error({ err: e, jobId: id }, 'job runner error'))
      .finally(() => {
        local.delete(id);
        submittedAt.delete(id);
      });
  };

  return {
    submit: (ids) => ids.forEach(submitOne),
    sweep: async (max = 200) => {
      if (stopping.signal.aborted) return 0;
      const due = (await o.store.dueJobs(max)).filter((id) => !local.has(id));
      due.forEach(submitOne);
      return due.length;
    },
    stop: async (graceMs) => {
      stopping.abort();
      // Queued here but not started: skipped from now on, so hand them back below.
      const queued = [...local].filter((id) => !running.has(id));
      const deadline = Date.now() + graceMs;
      while (running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      for (const ctrl of running.values()) ctrl.abort(new Error('shutdown'));
      while (running.size > 0) await new Promise((r) => setTimeout(r, 10));
      // Jobs still queued here would otherwise wait out their hand-off grace (a lease) before another process
      // takes them: hand them back as due now.
      await Promise.all(
        queued.map(async (id) => {
          const c = await o.store.claim(id, owner, o.leaseMs).catch(() => null);
          if (c?.status === 'claimed') await o.store.releaseJob(id, owner, 0).catch(() => undefined);
        }),
      );
    },
    get size() {
      return local.size;
    },
  };
}
