import { errorSummary } from '../error-summary.js';
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import type { JobRecords } from '../store/memory-jobs.js';
import { LeaseLostError, ShutdownError, retryDelayMs, type JobContext, type JobQueue, type QueueBaseOptions } from './job-queue.js';
import { createKeyedSerial } from './keyed-serial.js';
import { MAX_JOB_ATTEMPTS, RETRY_WINDOW_MS, orderKeyOf, type JobPayload, type JobProgress } from './jobs.js';
import { runAttempt } from './run-attempt.js';

export interface MemoryQueueOptions extends QueueBaseOptions {
  records: JobRecords;
}

/**
 * The embedded queue (no REDIS_URL): job records in memory and an in-process runner over them. Claim under a
 * lease, renew while working, complete (never re-run), or release with backoff after a transient failure, found
 * again by `sweep`. Jobs of one customer run in hand-off order. Nothing survives a restart.
 */
export function createMemoryQueue(o: MemoryQueueOptions): JobQueue {
  const owner = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const limit = pLimit(o.concurrency);
  const serial = createKeyedSerial();
  const local = new Set<string>();
  const submittedAt = new Map<string, number>();
  const running = new Map<string, AbortController>();
  const stopping = new AbortController();
  let waiting = 0;
  const attemptDeps = {
    store: o.store,
    handler: o.handler,
    leaseMs: o.leaseMs,
    maxAttempts: o.maxAttempts ?? MAX_JOB_ATTEMPTS,
    retryWindowMs: o.retryWindowMs ?? RETRY_WINDOW_MS,
    metrics: o.metrics,
  };
  const backoff = o.retryDelayMs ?? retryDelayMs;

  const runOne = async (id: string) => {
    const claim = await o.records.claim(id, owner, o.leaseMs);
    if (claim.status !== 'claimed') return;
    const since = submittedAt.get(id);
    if (since !== undefined) o.metrics.jobLag.observe((performance.now() - since) / 1000);
    let payload: JobPayload;
    try {
      payload = JSON.parse(claim.job.payload) as JobPayload;
    } catch {
      // Unreadable (written by an incompatible version?): finishing it beats re-running it for 4 days.
      o.log.error({ jobId: id }, 'job payload is not JSON; dropping the job');
      await o.records.complete(id, owner);
      return;
    }
    const ctrl = new AbortController();
    running.set(id, ctrl);
    const renew = setInterval(() => {
      o.records.renewJob(id, owner, o.leaseMs).then(
        (held) => held || ctrl.abort(new LeaseLostError(`lease on ${id} lost`)),
        (e: unknown) => o.log.warn({ err: e, jobId: id }, 'lease renewal failed'),
      );
    }, Math.max(100, Math.floor(o.leaseMs / 3)));
    const log = o.log.child({ jobId: id, channel: payload.channel, msgid: payload.msgid });
    try {
      const ctx: JobContext = {
        id,
        payload,
        attempts: claim.job.attempts,
        firstAtMs: claim.job.createdAtMs,
        progress: claim.job.progress ? (JSON.parse(claim.job.progress) as JobProgress) : null,
        signal: ctrl.signal,
        log,
        saveProgress: async (p: JobProgress) => {
          if (!(await o.records.saveProgress(id, owner, JSON.stringify(p)))) throw new LeaseLostError(`lease on ${id} lost`);
        ctx.progress = p;
        },
      };
      await runAttempt(attemptDeps, ctx, owner);
      if (!(await o.records.complete(id, owner))) log.warn('job finished after its lease was lost');
    } catch (e) {
      if (ctrl.signal.reason instanceof LeaseLostError || e instanceof LeaseLostError) {
        log.warn('lease lost; another run of this job takes over');
      } else if (stopping.signal.aborted) {
        await o.records.releaseJob(id, owner, 0).catch(() => undefined);
        log.info('job released (shutdown)');
      } else {
        const delayMs = backoff(claim.job.attempts);
        // Transient by definition (a refusal ends the job in the handler): warn, one line, no stack.
        log.warn({ err: errorSummary(e), attempts: claim.job.attempts, retryInMs: delayMs }, 'job failed; will retry');
        await o.records.releaseJob(id, owner, delayMs).catch(() => undefined);
      }
    } finally {
      clearInterval(renew);
      running.delete(id);
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
    kind: 'memory',
    handOff: async (jobs) => {
      const created = await o.records.handOff(jobs, o.leaseMs, o.dedupTtlMs);
      jobs.forEach((j, i) => created[i] && submitOne(j.id));
      return created;
    },
    counts: async () => ({ waiting, active: running.size, delayed: o.records.delayedCount() }),
    sweep: async () => {
      if (stopping.signal.aborted) return;
      const due = (await o.records.dueJobs(200)).filter((id) => !local.has(id));
      due.forEach(submitOne);
    },
    stop: async (graceMs) => {
      stopping.abort();
      // Queued here but not started: skipped from now on, so hand them back below.
      const queued = [...local].filter((id) => !running.has(id));
      const deadline = Date.now() + graceMs;
      while (running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      for (const ctrl of running.values()) ctrl.abort(new ShutdownError('shutdown'));
      while (running.size > 0) await new Promise((r) => setTimeout(r, 10));
      await Promise.all(
        queued.map(async (id) => {
          const c = await o.records.claim(id, owner, o.leaseMs).catch(() => null);
          if (c?.status === 'claimed') await o.records.releaseJob(id, owner, 0).catch(() => undefined);
        }),
      );
      o.records.close();
    },
    get size() {
      return local.size;
    },
  };
}
