/**
 * The JobQueue contract, run on both implementations: the embedded one (memory records + in-process runner) and
 * BullMQ on the test Redis. Dedup and created-now, retry with progress kept, giving up with the fallback when the
 * attempts run out, one job per customer at a time in order, and a graceful stop handing work back to the next
 * process. Then what only BullMQ has: its job ids, and a lost lock aborting the running attempt.
 */
import { Cluster, Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { bullJobId, createBullmqQueue, QUEUE_NAME } from '../../src/pipeline/bullmq-queue.js';
import { LeaseLostError, ShutdownError, type JobContext, type JobHandler, type JobQueue } from '../../src/pipeline/job-queue.js';
import type { JobPayload, JobProgress } from '../../src/pipeline/jobs.js';
import { createMemoryQueue } from '../../src/pipeline/memory-queue.js';
import { createMemoryJobRecords, type JobRecords } from '../../src/store/memory-jobs.js';
import { keys } from '../../src/store/keys.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/types.js';
import { clusterSeeds, connectCluster, connectRedis, redisClusterNodes, redisUrl, uniquePrefix } from '../helpers/redis.js';
import { queueShardPrefixes } from '../../src/pipeline/queue-shards.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = pino({ level: 'silent' });

async function until(cond: () => boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

function payload(user: string, msgid: string): string {
  const p: JobPayload = { channel: 'kf', type: 'kf.text', open_kfid: 'wkAcc', external_userid: user, msgid, send_time: 0, content: msgid };
  return JSON.stringify(p);
}
const job = (user: string, msgid: string) => ({ id: `kf:wkAcc:${user}:${msgid}`, payload: payload(user, msgid) });

interface QueueOpts {
  maxAttempts?: number;
  leaseMs?: number;
  retryWindowMs?: number;
  metrics?: ReturnType<typeof createMetrics>;
}

/** Processes meeting in one backing store: each `open` is one process's queue. */
interface World {
  store: Store;
  open(handler: JobHandler, o?: QueueOpts): JobQueue;
  close(): Promise<void>;
}

function memoryWorld(): World {
  const store = createMemoryStore();
  const records: JobRecords = createMemoryJobRecords();
  const queues: JobQueue[] = [];
  // main.ts sweeps every 5 s; here often, so retries and hand-backs are found at once
  const sweeper = setInterval(() => queues.forEach((q) => void q.sweep()), 30);
  return {
    store,
    open: (handler, o = {}) => {
      const q = createMemoryQueue({
        records,
        store,
        log,
        metrics: o.metrics ?? createMetrics(),
        handler,
        leaseMs: o.leaseMs ?? 5000,
        dedupTtlMs: 60_000,
        concurrency: 8,
        maxAttempts: o.maxAttempts,
        retryWindowMs: o.retryWindowMs,
        retryDelayMs: () => 20,
      });
      queues.push(q);
      return q;
    },
    close: async () => {
      clearInterval(sweeper);
      await Promise.all(queues.map((q) => q.stop(100)));
      await store.close();
    },
  };
}

/**
 * BullMQ on the run's Redis, or (cluster) on its 3-master Redis Cluster with the answers spread over 6 shards the
 * way deps.ts lays them out there.
 */
async function bullmqWorld(prefix = uniquePrefix('jq'), cluster = false): Promise<World> {
  // fail fast, as deps.ts makes the store's client that the producer shares
  const connect = () => (cluster ? connectCluster() : connectRedis());
  const store = createRedisStore(await connect(), prefix);
  const producer = await connect();
  const queues: JobQueue[] = [];
  const base = prefix.replace(/:$/, '');
  return {
    store,
    open: (handler, o = {}) => {
      const q = createBullmqQueue({
        producer,
        workerConnection: cluster
          ? new Cluster(clusterSeeds(), { redisOptions: { maxRetriesPerRequest: null } })
          : new Redis(redisUrl, { maxRetriesPerRequest: null }),
        prefix: base,
        shardPrefixes: queueShardPrefixes(base, cluster ? 6 : 1, cluster),
        store,
        log,
        metrics: o.metrics ?? createMetrics(),
        handler,
        leaseMs: o.leaseMs ?? 5000,
        dedupTtlMs: 60_000,
        concurrency: 8,
        maxAttempts: o.maxAttempts,
        retryWindowMs: o.retryWindowMs,
        retryDelayMs: () => 20,
      });
      queues.push(q);
      return q;
    },
    close: async () => {
      await Promise.all(queues.map((q) => q.stop(100)));
      await store.close();
      await producer.quit();
    },
  };
}

/** A handler that records each run; `body` decides what the attempt does. */
function recorder(body: (ctx: JobContext) => Promise<void> = async () => undefined) {
  const runs: JobContext[] = [];
  const gaveUp: JobContext[] = [];
  const handler: JobHandler = {
    run: async (ctx) => {
      runs.push(ctx);
      await body(ctx);
    },
    giveUp: async (ctx) => {
      gaveUp.push(ctx);
    },
  };
  return { runs, gaveUp, handler };
}

const variants: { name: string; make: () => Promise<World>; enabled: boolean }[] = [
  { name: 'memory', make: async () => memoryWorld(), enabled: true },
  { name: 'bullmq', make: () => bullmqWorld(), enabled: redisUrl !== '' },
  { name: 'bullmq on a redis cluster, 6 shards', make: () => bullmqWorld(uniquePrefix('jqc'), true), enabled: redisClusterNodes !== '' },
];

for (const v of variants) {
  describe.skipIf(!v.enabled)(`job queue contract: ${v.name}`, () => {
    let world: World | null = null;
    afterEach(async () => {
      await world?.close();
      world = null;
    });

    it('hands off once per id and says which jobs were created now (also within one batch); each runs once', async () => {
      world = await v.make();
      const r = recorder();
      const q = world.open(r.handler);
      expect(await q.handOff([job('u1', 'm1'), job('u2', 'm2')])).toEqual([true, true]);
      expect(await q.handOff([job('u1', 'm1'), job('u3', 'm3'), job('u3', 'm3')])).toEqual([false, true, false]);
      await until(() => r.runs.length >= 3);
      await sleep(300);
      expect(r.runs.map((c) => c.id).sort()).toEqual(['kf:wkAcc:u1:m1', 'kf:wkAcc:u2:m2', 'kf:wkAcc:u3:m3']);
      expect(r.runs.every((c) => c.attempts === 1 && c.progress === null)).toBe(true);
      expect(r.runs.find((c) => c.id.endsWith('m2'))?.payload).toMatchObject({ channel: 'kf', msgid: 'm2', content: 'm2' });
      // finished jobs still dedup
      expect(await q.handOff([job('u1', 'm1')])).toEqual([false]);
      await sleep(200);
      expect(r.runs).toHaveLength(3);
    });

    it('a transient failure is retried; the next attempt sees the progress saved so far', async () => {
      world = await v.make();
      const saved: JobProgress = { parts: ['a', 'b'], kind: 'answer', sent: 1 };
      const r = recorder(async (ctx) => {
        if (ctx.attempts === 1) {
          await ctx.saveProgress(saved);
          throw new Error('WeCom is down');
        }
      });
      await world.open(r.handler).handOff([job('u1', 'm1')]);
      await until(() => r.runs.length >= 2);
      await sleep(200);
      expect(r.runs.map((c) => c.attempts)).toEqual([1, 2]);
      expect(r.runs[1]!.progress).toEqual(saved);
      expect(r.gaveUp).toEqual([]);
    });

    it('the last attempt failing ends in giveUp, once, with what the job had done', async () => {
      world = await v.make();
      const r = recorder(async (ctx) => {
        await ctx.saveProgress({ parts: ['x'], kind: 'answer', sent: 0 });
        throw new Error(`failure ${ctx.attempts}`);
      });
      await world.open(r.handler, { maxAttempts: 3 }).handOff([job('u1', 'm1')]);
      await until(() => r.gaveUp.length >= 1);
      await sleep(400);
      expect(r.runs.map((c) => c.attempts)).toEqual([1, 2, 3]);
      expect(r.gaveUp).toHaveLength(1);
      expect(r.gaveUp[0]!.attempts).toBe(3);
      expect(r.gaveUp[0]!.progress).toEqual({ parts: ['x'], kind: 'answer', sent: 0 });
    });

    it('a job still failing when its retry window closes gives up, once, and is counted in bridge_jobs_given_up_total', async () => {
      world = await v.make();
      const metrics = createMetrics();
      const r = recorder(async (ctx) => {
        await sleep(60);
        throw new Error(`failure ${ctx.attempts}`);
      });
      // 1 s of retries at a 20 ms backoff: a dozen attempts at most, far fewer than maxAttempts. The window counts
      // from the hand-off, so it must leave room for a busy CI machine's first pick-up (a cluster worker's first
      // fetch once took over 240 ms there, and a 300 ms window then closed after one attempt, as it should).
      await world.open(r.handler, { maxAttempts: 1000, retryWindowMs: 1000, metrics }).handOff([job('u1', 'm1')]);
      await until(() => r.gaveUp.length >= 1);
      await sleep(300);
      expect(r.gaveUp).toHaveLength(1);
      expect(r.runs.length).toBeGreaterThan(1);
      expect(r.runs.length).toBeLessThan(15);
      expect(Date.now() - r.gaveUp[0]!.firstAtMs).toBeGreaterThanOrEqual(1000);
      expect(await metrics.registry.getSingleMetricAsString('bridge_jobs_given_up_total')).toMatch(/channel="kf"} 1/);
    });

    /** A handler that records the order of customer `same`'s jobs and whether two of them ever overlapped. */
    function orderWatch() {
      const state = { events: [] as string[], running: 0, overlap: false };
      const r = recorder(async (ctx) => {
        if (ctx.payload.channel !== 'kf' || ctx.payload.external_userid !== 'same') return;
        state.running += 1;
        if (state.running > 1) state.overlap = true;
        state.events.push(ctx.payload.msgid);
        await sleep(60);
        state.running -= 1;
      });
      return { ...r, state };
    }

    it('within one process a customer’s jobs run one at a time in hand-off order; other customers run alongside', async () => {
      world = await v.make();
      const r = orderWatch();
      const q = world.open(r.handler);
      for (const m of ['m1', 'm2', 'm3', 'm4']) await q.handOff([job('same', m)]);
      await q.handOff([job('other', 'o1')]);
      await until(() => r.state.events.length === 4);
      expect(r.state.overlap).toBe(false);
      expect(r.state.events).toEqual(['m1', 'm2', 'm3', 'm4']);
      expect(r.runs.findIndex((c) => c.id.endsWith('o1'))).toBeLessThan(4);
    });

    it('across two processes a customer’s jobs run one at a time and in hand-off order', async () => {
      world = await v.make();
      const r = orderWatch();
      const q = world.open(r.handler);
      const q2 = world.open(r.handler);
      await q.handOff(['m1', 'm2', 'm3'].map((m) => job('same', m)));
      // Handed off by the other process too (a second replica's pull or callback), in order after the first three.
      await q2.handOff(['m4', 'm5', 'm6'].map((m) => job('same', m)));
      await until(() => r.state.events.length === 6);
      expect(r.state.overlap).toBe(false);
      expect(r.state.events).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    });

    it('stop lets running jobs finish for the grace, then aborts and hands the rest back to the next process', async () => {
      world = await v.make();
      const reasons: unknown[] = [];
      const first = recorder(async (ctx) => {
        await ctx.saveProgress({ parts: ['p'], kind: 'answer', sent: 0 });
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        reasons.push(ctx.signal.reason);
        ctx.signal.throwIfAborted();
      });
      const q1 = world.open(first.handler);
      await q1.handOff([job('u1', 'm1')]);
      await until(() => first.runs.length === 1);
      const t0 = Date.now();
      await q1.stop(150);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toBeInstanceOf(ShutdownError);
      const second = recorder();
      world.open(second.handler);
      await until(() => second.runs.length === 1, 4000);
      expect(second.runs[0]!.attempts).toBe(2);
      expect(second.runs[0]!.progress).toEqual({ parts: ['p'], kind: 'answer', sent: 0 });
      expect(first.gaveUp).toEqual([]);
    });
  });
}

describe.skipIf(redisUrl === '')('BullMQ queue', () => {
  it('job ids follow BullMQ’s rules: the channel as a prefix, no colon, never all digits, stable', () => {
    const id = bullJobId('kf:wkAcc:wmUser:123456789');
    expect(id).toMatch(/^kf-[A-Za-z0-9_-]{43}$/);
    expect(bullJobId('kf:wkAcc:wmUser:123456789')).toBe(id);
    expect(bullJobId('kf:wkAcc:wmUser:123456780')).not.toBe(id);
    expect(bullJobId('mp:wxApp:oUser:24000000000000001')).toMatch(/^mp-[^:]+$/);
  });

  it('a lost lock aborts the attempt’s signal with LeaseLostError, and its saveProgress refuses to write', async () => {
    const prefix = uniquePrefix('jq-lock');
    const world = await bullmqWorld(prefix);
    const raw = await connectRedis();
    try {
      let saveAfterLoss: unknown = null;
      const r = recorder(async (ctx) => {
        if (ctx.attempts > 1) return;
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        saveAfterLoss = await ctx.saveProgress({ parts: ['late'], kind: 'answer', sent: 1 }).catch((e: unknown) => e);
        ctx.signal.throwIfAborted();
      });
      const j = job('u1', 'm1');
      await world.open(r.handler, { leaseMs: 1000 }).handOff([j]);
      await until(() => r.runs.length === 1);
      const lockKey = `${prefix.replace(/:$/, '')}:${QUEUE_NAME}:${bullJobId(j.id)}:lock`;
      expect(await raw.exists(lockKey)).toBe(1);
      await raw.del(lockKey);
      await until(() => r.runs[0]!.signal.aborted, 4000);
      expect(r.runs[0]!.signal.reason).toBeInstanceOf(LeaseLostError);
      await until(() => saveAfterLoss !== null, 2000);
      expect(saveAfterLoss).toBeInstanceOf(LeaseLostError);
      // the stalled check gives the job to another run, which finishes it
      await until(() => r.runs.length === 2, 8000);
      expect(r.runs[1]!.progress).toBeNull();
    } finally {
      await raw.quit();
      await world.close();
    }
  });

  it('a customer’s next job waits behind an older one in retries at most the lease, and a stale ticket blocks nothing', async () => {
    const prefix = uniquePrefix('jq-order');
    const world = await bullmqWorld(prefix);
    const raw = await connectRedis();
    try {
      const ran: Array<{ msgid: string; at: number }> = [];
      const r = recorder(async (ctx) => {
        ran.push({ msgid: ctx.payload.msgid, at: Date.now() });
        if (ctx.payload.msgid === 'stuck') throw new Error('WeCom keeps failing');
      });
      // A ticket whose job never reached the queue (a crash between the two): skipped after a second's grace.
      await raw.zadd(`${prefix}${keys.customerOrder('kf:wkAcc:u1')}`, 0, 'kf:wkAcc:u1:ghost');
      const q = world.open(r.handler, { leaseMs: 800, maxAttempts: 50 });
      const t0 = Date.now();
      await q.handOff([job('u1', 'first')]);
      await until(() => ran.some((x) => x.msgid === 'first'), 2000);
      expect(Date.now() - t0).toBeLessThan(2000);

      await q.handOff([job('u1', 'stuck'), job('u1', 'next')]);
      await until(() => ran.some((x) => x.msgid === 'next'), 4000);
      const stuckAt = ran.find((x) => x.msgid === 'stuck')!.at;
      const nextAt = ran.find((x) => x.msgid === 'next')!.at;
      // It did wait (the order), but not for good (the lease bounds it).
      expect(nextAt - stuckAt).toBeGreaterThanOrEqual(700);
    } finally {
      await raw.quit();
      await world.close();
    }
  });
});
