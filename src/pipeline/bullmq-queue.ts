import { errorSummary } from '../error-summary.js';
import { createHash, randomBytes } from 'node:crypto';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { RedisClient } from '../store/redis-client.js';
import { keys } from '../store/keys.js';
import { LeaseLostError, ShutdownError, retryDelayMs, type JobContext, type JobQueue, type QueueBaseOptions } from './job-queue.js';
import { createCustomerOrder, type CustomerOrder } from './customer-order.js';
import { MAX_JOB_ATTEMPTS, RETRY_WINDOW_MS, orderKeyOf, type JobPayload, type JobProgress } from './jobs.js';
import { progressSaver, type SaveJobData } from './bullmq-progress.js';
import { shardOf } from './queue-shards.js';
import { LAYOUT_REFRESH_MS, createLayoutRegistry, layoutsToServe } from './queue-layouts.js';
import { runAttempt } from './run-attempt.js';

/** The one BullMQ queue of the bridge: every job answers one customer message. */
export const QUEUE_NAME = 'answers';
/** How often `bridge_jobs_waiting` is refreshed from the queue's counts, ms. */
const WAITING_REFRESH_MS = 5000;

/** What a BullMQ job carries: the readable id (logs, per-customer order) and the pipeline's JSON. */
interface JobData {
  id: string;
  payload: string;
  /** JSON of JobProgress, written as the job goes */
  progress?: string;
}

/**
 * A running job's BullMQ lock and customer lock, ms: renewed while the job runs (BullMQ every half of it; the
 * customer lock every third), so it bounds how long a dead process's job waits, not how long a job may take.
 */
export const JOB_LOCK_MS = 10_000;

export interface BullmqQueueOptions extends QueueBaseOptions {
  /**
   * The producer's client (the store's, shared): created with `enableOfflineQueue: false` so a hand-off during a
   * Redis outage fails at once (the callback answers 503). Not closed here.
   */
  producer: RedisClient;
  /**
   * The worker's client, created with `maxRetriesPerRequest: null` so it waits and reconnects through an outage;
   * null in a web-only process (ROLE=web), which only adds jobs. Quit in `stop`.
   */
  workerConnection: RedisClient | null;
  /** key prefix without the trailing colon, e.g. `bridge`: the per-customer order tickets live under it */
  prefix: string;
  /**
   * The BullMQ prefix of each shard (queue-shards.ts; BullMQ adds `:answers:…`). A customer's jobs always go to the
   * same shard; a worker process runs one BullMQ Worker per shard. Default: `[prefix]`, one queue.
   */
  shardPrefixes?: string[];
  /**
   * The deployment's queue layouts (queue-layouts.ts). Given, this process records its QUEUE_SHARDS in the registry
   * at `key` and, if it runs workers, also serves the shards of any other layout that still holds jobs or is still
   * in use, so that changing QUEUE_SHARDS strands no job. Given, the shards are `prefixesOf(shards)` unless
   * `shardPrefixes` says otherwise.
   */
  layouts?: {
    key: string;
    shards: number;
    /** the default QUEUE_SHARDS of this kind of Redis: probed even if unregistered (a deployment from before the registry) */
    defaultShards: number;
    prefixesOf: (shards: number) => string[];
  };
}

/**
 * BullMQ's job id for a readable job id: BullMQ wants no `:` and never all digits, so the channel as a prefix and
 * base64url SHA-256 of the whole id (e.g. `kf-3q2…`). The same message always maps to the same id: the dedup.
 */
export function bullJobId(id: string): string {
  const channel = id.slice(0, id.indexOf(':')) || 'job';
  return `${channel}-${createHash('sha256').update(id).digest('base64url')}`;
}

/**
 * Jobs on BullMQ (REDIS_URL set). Hand-off adds to the queue (a duplicate id is ignored by BullMQ) and then writes
 * a first-writer-wins marker to learn whether the job is new. A Worker (not in ROLE=web) runs jobs with BullMQ's
 * blocking wait, retries failures with a capped exponential backoff, and gets back the jobs of a killed worker
 * through BullMQ's stalled check. Progress is saved in the job's data, so a re-run resumes.
 */
export function createBullmqQueue(o: BullmqQueueOptions): JobQueue {
  const ttlS = Math.ceil(o.dedupTtlMs / 1000);
  const maxAttempts = o.maxAttempts ?? MAX_JOB_ATTEMPTS;
  const shardPrefixes = o.shardPrefixes ?? o.layouts?.prefixesOf(o.layouts.shards) ?? [o.prefix];
  const makeQueue = (prefix: string) => {
    const queue = new Queue<JobData>(QUEUE_NAME, {
      connection: o.producer,
      prefix,
      defaultJobOptions: {
        // Our last attempt never throws (it gives up with the fallback); BullMQ's own limit is only a backstop.
        attempts: maxAttempts + 5,
        backoff: { type: 'capped' },
        removeOnComplete: { age: ttlS },
        removeOnFail: { age: ttlS },
      },
    });
    queue.on('error', (err: Error) => o.log.warn({ err: { message: err.message } }, 'job queue error'));
    return queue;
  };
  const queues = shardPrefixes.map(makeQueue);
  const shardIndex = (readableId: string) => shardOf(orderKeyOf(readableId), queues.length);
  const queueOf = (readableId: string) => queues[shardIndex(readableId)]!;

  const active = new Map<string, AbortController>();
  let stopping = false;
  const order = createCustomerOrder(o.producer, `${o.prefix}:`, { ttlMs: o.dedupTtlMs, maxWaitMs: o.leaseMs });
  // Shards of other QUEUE_SHARDS values that this process serves too (filled in once the registry was read).
  const leftovers: Array<{ shards: number; queues: Queue<JobData>[] }> = [];
  const finished = async (readableId: string) => {
    let job = await queueOf(readableId).getJob(bullJobId(readableId));
    // A customer's older job may still sit in an old layout's shard; its ticket must keep the order until it ran.
    for (const l of leftovers) job ??= await l.queues[shardOf(orderKeyOf(readableId), l.shards)]!.getJob(bullJobId(readableId));
    if (!job) return true;
    const state = await job.getState();
    return state === 'completed' || state === 'failed' || state === 'unknown';
  };
  // Each shard's Worker may take up to twice its even share of the process's concurrency: customers hash unevenly
  // over few shards, and a busy shard must not wait while another idles (the agents' own limits still hold).
  const shareOf = (shards: number) => (shards === 1 ? o.concurrency : Math.min(o.concurrency, Math.ceil((2 * o.concurrency) / shards)));
  const saverFor = progressSaver(o.producer);
  const workers = o.workerConnection
    ? shardPrefixes.map((prefix) => startWorker({ ...o, concurrency: shareOf(queues.length) }, prefix, active, () => stopping, order, finished, saverFor(`${prefix}:${QUEUE_NAME}`)))
    : [];

  const layouts = o.layouts;
  const registry = layouts ? createLayoutRegistry(o.producer, layouts.key) : null;
  let registeredAtMs = 0;
  const register = () => {
    if (!registry) return;
    registeredAtMs = Date.now();
    registry.register(layouts!.shards, registeredAtMs).catch((e: unknown) => o.log.warn({ err: errorSummary(e) }, 'could not record the queue layout'));
  };
  register();
  const serveLeftovers = async () => {
    if (!registry || !layouts || !o.workerConnection) return;
    const found = await layoutsToServe(registry, layouts.shards, layouts.defaultShards, (n) => layouts.prefixesOf(n).map(makeQueue), Date.now());
    for (const l of found) {
      if (stopping) {
        await Promise.all(l.queues.map((q) => q.close()));
        continue;
      }
      leftovers.push({ shards: l.shards, queues: l.queues });
      for (const prefix of layouts.prefixesOf(l.shards)) {
        workers.push(startWorker({ ...o, concurrency: shareOf(l.shards) }, prefix, active, () => stopping, order, finished, saverFor(`${prefix}:${QUEUE_NAME}`)));
      }
      o.log.warn(
        { queueShards: layouts.shards, otherQueueShards: l.shards, jobs: l.jobs },
        'serving the shards of another QUEUE_SHARDS value too: it still holds jobs or was used within 2 h',
      );
    }
  };
  // Read once at start (no poll): a layout that is still in use stays served for this process's lifetime.
  const leftoversServed = serveLeftovers().catch((e: unknown) => o.log.warn({ err: errorSummary(e) }, 'could not read the queue layouts'));
  const allQueues = () => [...queues, ...leftovers.flatMap((l) => l.queues)];

  const sumCounts = async (...states: ('wait' | 'prioritized' | 'active' | 'delayed')[]) => {
    const all = await Promise.all(allQueues().map((q) => q.getJobCounts(...states)));
    const total: Record<string, number> = {};
    for (const c of all) for (const [k, v] of Object.entries(c)) total[k] = (total[k] ?? 0) + v;
    return total;
  };

  const refreshWaiting = () =>
    sumCounts('wait', 'prioritized', 'delayed')
      .then((c) => o.metrics.jobsWaiting.set(Object.values(c).reduce((a, b) => a + b, 0)))
      .catch(() => undefined);
  const gauge = setInterval(refreshWaiting, WAITING_REFRESH_MS);
  gauge.unref();

  return {
    kind: 'bullmq',
    handOff: async (jobs) => {
      if (jobs.length === 0) return [];
      if (Date.now() - registeredAtMs > LAYOUT_REFRESH_MS) register();
      await order.enqueue(jobs.map((j) => ({ id: j.id, orderKey: orderKeyOf(j.id) })));
      const byShard = new Map<number, typeof jobs>();
      for (const j of jobs) {
        const i = shardIndex(j.id);
        const part = byShard.get(i);
        if (part) part.push(j);
        else byShard.set(i, [j]);
      }
      await Promise.all(
        [...byShard].map(([i, part]) =>
          queues[i]!.addBulk(part.map((j) => ({ name: 'answer', data: { id: j.id, payload: j.payload }, opts: { jobId: bullJobId(j.id) } }))),
        ),
      );
      // AFTER the add: a crash between the two leaves a job with no marker, and the platform's retry then reports
      // it as new once more (a count, never a lost message); the reverse order could lose one.
      // One marker write per distinct id: a batch may repeat an id (a platform page that lists a message twice), and
      // two concurrent SET NX on one key are not ordered on a cluster client, so the repeat could win over the first.
      const ids = [...new Set(jobs.map((j) => j.id))];
      const created = new Map(await Promise.all(ids.map(async (id) => [id, await o.store.setIfAbsent(keys.jobHandedOff(id), '1', o.dedupTtlMs)] as const)));
      // The first occurrence of an id takes its answer; a repeat finds it taken (false).
      return jobs.map((j) => {
        const isNew = created.get(j.id) === true;
        created.delete(j.id);
        return isNew;
      });
    },
    sweep: async () => undefined,
    counts: async () => {
      const c = await sumCounts('wait', 'prioritized', 'active', 'delayed');
      return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
    },
    stop: async (graceMs) => {
      stopping = true;
      clearInterval(gauge);
      await leftoversServed;
      if (workers.length > 0) {
        const closed = Promise.all(workers.map((w) => w.close()));
        let timer: NodeJS.Timeout | undefined;
        const late = await Promise.race([
          closed.then(() => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
        ]);
        clearTimeout(timer);
        if (late) for (const ctrl of active.values()) ctrl.abort(new ShutdownError('shutdown'));
        await closed;
        await o.workerConnection?.quit().catch(() => o.workerConnection?.disconnect());
      }
      await Promise.all(allQueues().map((q) => q.close()));
    },
    get size() {
      return active.size;
    },
  };
}

function startWorker(
  o: BullmqQueueOptions,
  prefix: string,
  active: Map<string, AbortController>,
  stopping: () => boolean,
  order: CustomerOrder,
  finished: (readableId: string) => Promise<boolean>,
  save: SaveJobData,
): Worker<JobData> {
  const owner = `${process.pid}-${randomBytes(6).toString('hex')}`;
  // No in-process queue per customer here: the tickets order a customer's jobs in this process too, and a second
  // queue would deadlock with them (a re-queued older job stuck behind a newer one that waits for it).
  const maxAttempts = o.maxAttempts ?? MAX_JOB_ATTEMPTS;
  const backoff = o.retryDelayMs ?? retryDelayMs;
  const lockMs = Math.min(o.leaseMs, JOB_LOCK_MS);
  // The customer lock too is short and renewed (every third of it) while the attempt runs: a killed process's lock
  // lapses with its job's.
  const attemptDeps = { store: o.store, handler: o.handler, leaseMs: lockMs, maxAttempts, retryWindowMs: o.retryWindowMs ?? RETRY_WINDOW_MS, metrics: o.metrics };

  const processJob = async (job: Job<JobData>, token: string | undefined, bullSignal?: AbortSignal): Promise<void> => {
    const id = job.data.id;
    const bullId = job.id ?? bullJobId(id);
    const ctrl = new AbortController();
    active.set(bullId, ctrl);
    const signal = bullSignal ? AbortSignal.any([ctrl.signal, bullSignal]) : ctrl.signal;
    // Time from hand-off to the first start: the queue in front of the answers (retries wait on purpose).
    if (job.attemptsMade === 0 && job.attemptsStarted <= 1) o.metrics.jobLag.observe(Math.max(0, Date.now() - job.timestamp) / 1000);
    let payload: JobPayload;
    try {
      payload = JSON.parse(job.data.payload) as JobPayload;
    } catch {
      o.log.error({ jobId: id }, 'job payload is not JSON; dropping the job');
      active.delete(bullId);
      await order.finish(id, orderKeyOf(id)).catch(() => undefined);
      return;
    }
    const log = o.log.child({ jobId: id, channel: payload.channel, msgid: payload.msgid });
    const ctx: JobContext = {
      id,
      payload,
      attempts: Math.max(1, job.attemptsStarted),
      firstAtMs: job.timestamp,
      progress: job.data.progress ? (JSON.parse(job.data.progress) as JobProgress) : null,
      signal,
      log,
      saveProgress: async (p: JobProgress) => {
        // Written only while we hold the job's lock (one script proves, extends and writes), so a worker whose lock
        // was taken over stops instead of overwriting the new owner's record.
        const data: JobData = { ...job.data, progress: JSON.stringify(p) };
        const saved = token ? await save(bullId, token, lockMs, JSON.stringify(data)) : 0;
        if (saved !== 1) throw new LeaseLostError(saved === -1 ? `job ${id} is gone` : `lock on ${id} lost`);
        job.data = data;
        ctx.progress = p;
      },
    };
    const orderKey = orderKeyOf(id);
    const attempt = async () => {
      try {
        // This or another process may hold an older job of this customer: wait for it (the lock alone would let the
        // newer one win the race).
        await order.awaitTurn(id, orderKey, signal, finished, log);
        // The customer lock's owner is this job, not this process: a job that stopped waiting for an older one
        // (past the lease) must still wait for the lock that older job holds, here as anywhere.
        // The job is over either way: a failed removal must not make it run (and answer) again; the next job of the
        // customer finds the ticket's job completed and drops it.
        const dropTicket = () => order.finish(id, orderKey).catch((e: unknown) => log.warn({ err: e }, 'could not drop the job’s order ticket'));
        await runAttempt(attemptDeps, ctx, `${owner}:${bullId}`, dropTicket);
      } catch (e) {
        if (!(stopping() && signal.aborted) || ctrl.signal.reason instanceof LeaseLostError || e instanceof LeaseLostError) throw e;
        // Handed back due now (moveToDelayed counts no attempt) for the next worker; the tickets keep the order.
        await job.moveToDelayed(Date.now(), token);
        log.info('job handed back (shutdown)');
        throw new DelayedError();
      }
    };
    try {
      await attempt();
    } catch (e) {
      if (e instanceof DelayedError) throw e;
      if (ctrl.signal.reason instanceof LeaseLostError || e instanceof LeaseLostError) {
        log.warn('lease lost (its BullMQ lock); the stalled check gives the job to another run');
        throw e;
      }
      // Transient by definition (a refusal ends the job in the handler): warn, one line, no stack.
      log.warn({ err: errorSummary(e), attempts: ctx.attempts, retryInMs: backoff(job.attemptsMade + 1) }, 'job failed; will retry');
      throw e;
    } finally {
      active.delete(bullId);
    }
  };

  const worker = new Worker<JobData>(QUEUE_NAME, processJob, {
    connection: o.workerConnection!,
    prefix,
    concurrency: o.concurrency,
    // Short, and renewed by BullMQ every half of it while the job runs, however long the LLM takes: a killed
    // worker's job goes back to wait once its lock lapsed and the next stalled check ran (≤ 10 s + 5 s, within the
    // 20 s interface.md promises), instead of after LLM_TIMEOUT_MS + 30 s.
    lockDuration: lockMs,
    stalledInterval: Math.min(lockMs, 5000),
    // Crashes are counted by attemptsStarted (runAttempt gives up past maxAttempts with the fallback): BullMQ
    // failing a job for stalling would end it in silence, so its limit only comes after ours.
    maxStalledCount: maxAttempts + 5,
    settings: { backoffStrategy: (attemptsMade: number) => backoff(attemptsMade) },
  });
  worker.on('lockRenewalFailed', (ids) => {
    for (const jobId of ids) active.get(jobId)?.abort(new LeaseLostError(`lock on ${jobId} lost`));
  });
  worker.on('error', (err) => o.log.warn({ err: { message: err.message } }, 'job worker error'));
  return worker;
}
