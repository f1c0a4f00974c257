import type { Queue } from 'bullmq';
import type { RedisClient } from '../store/redis-client.js';
import { CLEAR_WANTED } from '../store/redis-scripts.js';

/**
 * How often a process writes its layout again while it hands jobs off, ms. Hand-offs refresh it (no timer): a process
 * that is still adding jobs under an old QUEUE_SHARDS keeps that layout on the list.
 */
export const LAYOUT_REFRESH_MS = 3_600_000;
/** A layout last written longer ago than this, and holding no job, is forgotten, ms (two refresh periods). */
export const LAYOUT_STALE_MS = 2 * LAYOUT_REFRESH_MS;

/** One queue layout (a QUEUE_SHARDS value) as the registry knows it. */
export interface LayoutEntry {
  shards: number;
  /** the stored value as read (epoch ms as a string), for a compare-and-delete; '' for a layout never written */
  stamp: string;
}

/**
 * The registry of the queue layouts a deployment has run with: one Redis hash, `QUEUE_SHARDS` value → epoch ms of the
 * last start or refresh by a process using it. It exists because a job stays in the shard it was added to: after
 * QUEUE_SHARDS changes, workers with the new value must still serve the old shards until they are empty, or the
 * jobs left there would wait forever (docs/redis-cluster.md, "Changing the shard count").
 * @param key e.g. `bridge:queue-layouts` (one key: fine on a cluster)
 */
export function createLayoutRegistry(client: RedisClient, key: string) {
  return {
    /** Records that a process uses `shards` now (`nowMs`: epoch ms). @throws the Redis client's error */
    register: async (shards: number, nowMs: number): Promise<void> => {
      await client.hset(key, String(shards), String(nowMs));
    },
    /** Every layout written, with its stamp. */
    list: async (): Promise<LayoutEntry[]> =>
      Object.entries(await client.hgetall(key)).map(([shards, stamp]) => ({ shards: Number(shards), stamp })),
    /**
     * Forgets a layout only if nobody wrote it since it was read (a process that refreshed it meanwhile keeps it).
     * @returns whether it was removed
     */
    forget: async (e: LayoutEntry): Promise<boolean> =>
      e.stamp === '' || (await client.eval(CLEAR_WANTED, 1, key, String(e.shards), e.stamp)) === 1,
  };
}

export type LayoutRegistry = ReturnType<typeof createLayoutRegistry>;

/** Job states that mean "a job still lives here" (an active one may be a dead process's, for the stalled check). */
const LIVE_STATES = ['wait', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/**
 * Jobs waiting, running, delayed or prioritised over a layout's shards (its BullMQ queues, one `getJobCounts` each).
 * @throws the Redis client's error
 */
export async function liveJobs(queues: Queue[]): Promise<number> {
  const counts = await Promise.all(queues.map((q) => q.getJobCounts(...LIVE_STATES)));
  return counts.reduce((sum, c) => sum + Object.values(c).reduce((a, b) => a + b, 0), 0);
}

/**
 * The layouts other than `current` to look at: every one listed (a stray field that is not a QUEUE_SHARDS value,
 * 1–64, is ignored), plus `alwaysProbe` (the default count of this kind of Redis) when not listed, for the jobs of a
 * deployment that ran before the list existed (its `stamp` is '').
 */
export function otherLayouts(listed: LayoutEntry[], current: number, alwaysProbe: number): LayoutEntry[] {
  const others = listed.filter((e) => e.shards !== current && Number.isInteger(e.shards) && e.shards >= 1 && e.shards <= 64);
  if (alwaysProbe !== current && !listed.some((e) => e.shards === alwaysProbe)) others.push({ shards: alwaysProbe, stamp: '' });
  return others;
}

/**
 * The layouts other than `current` that a worker process must serve: those that still hold a job, or that a process
 * wrote within LAYOUT_STALE_MS (it may still add jobs there), among {@link otherLayouts}. Layouts that are neither
 * are forgotten here.
 * @param queuesOf BullMQ queues of a layout's shards, on the producer client (closed here for layouts not served)
 * @param nowMs epoch ms, compared with the stamps
 * @returns the layouts to serve, each with its open queues and its job count, in registry order
 * @throws the Redis client's error (the caller logs it and serves its own layout only)
 */
export async function layoutsToServe(
  registry: LayoutRegistry,
  current: number,
  alwaysProbe: number,
  queuesOf: (shards: number) => Queue[],
  nowMs: number,
): Promise<Array<{ shards: number; queues: Queue[]; jobs: number }>> {
  const candidates = otherLayouts(await registry.list(), current, alwaysProbe);
  const serve: Array<{ shards: number; queues: Queue[]; jobs: number }> = [];
  for (const e of candidates) {
    const queues = queuesOf(e.shards);
    const jobs = await liveJobs(queues);
    const recent = e.stamp !== '' && nowMs - Number(e.stamp) < LAYOUT_STALE_MS;
    if (jobs > 0 || recent) {
      serve.push({ shards: e.shards, queues, jobs });
      continue;
    }
    await Promise.all(queues.map((q) => q.close()));
    await registry.forget(e);
  }
  return serve;
}
