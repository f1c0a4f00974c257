import { Queue } from 'bullmq';
import { QUEUE_NAME } from '../pipeline/bullmq-queue.js';
import { createLayoutRegistry, liveJobs, otherLayouts } from '../pipeline/queue-layouts.js';
import { queueShardPrefixes } from '../pipeline/queue-shards.js';
import type { RedisClient } from '../store/redis-client.js';
import { messageOf, pass, warn, type DoctorResult } from './types.js';

/**
 * The queue layouts (QUEUE_SHARDS values) of the deployment (pipeline/queue-layouts.ts): passes when only this
 * configuration's value holds jobs; warns for each other value that still holds jobs, which only a worker process
 * started since the change serves (docs/redis-cluster.md, "Changing the shard count").
 * @param o.shards QUEUE_SHARDS as configured; `defaultShards` the default of this kind of Redis (checked even if not
 *   listed: jobs from a version before the list); `prefix` the key prefix without its colon (default `bridge`)
 */
export async function checkQueueLayouts(
  client: RedisClient,
  o: { shards: number; defaultShards: number; cluster: boolean; prefix?: string; now: () => number },
): Promise<DoctorResult[]> {
  try {
    return await layoutResults(client, o);
  } catch (e) {
    return [warn('queue shards', `could not read the queue layouts: ${messageOf(e)}`, 'check that this Redis allows HGETALL and the BullMQ queue reads')];
  }
}

async function layoutResults(
  client: RedisClient,
  o: { shards: number; defaultShards: number; cluster: boolean; prefix?: string; now: () => number },
): Promise<DoctorResult[]> {
  const prefix = o.prefix ?? 'bridge';
  const others = otherLayouts(await createLayoutRegistry(client, `${prefix}:queue-layouts`).list(), o.shards, o.defaultShards);
  const results: DoctorResult[] = [];
  const empty: number[] = [];
  for (const e of others) {
    const jobs = await jobsUnder(client, queueShardPrefixes(prefix, e.shards, o.cluster));
    if (jobs === 0) {
      empty.push(e.shards);
      continue;
    }
    const ago = e.stamp === '' ? 'not listed (a version from before the list)' : `last used ${Math.round((o.now() - Number(e.stamp)) / 60_000)} min ago`;
    results.push(
      warn(
        `queue shards (QUEUE_SHARDS=${e.shards})`,
        `${jobs} jobs still wait under QUEUE_SHARDS=${e.shards} (${ago}); this configuration uses ${o.shards}`,
        'worker processes started since the change serve those shards until they are empty (their log says "serving the shards of another QUEUE_SHARDS value"); if none has started since, restart the workers',
      ),
    );
  }
  if (results.length === 0) {
    const also = empty.length > 0 ? ` (no job left under ${empty.map((n) => `QUEUE_SHARDS=${n}`).join(', ')})` : '';
    results.push(pass('queue shards', `QUEUE_SHARDS=${o.shards}${also}`));
  }
  return results;
}

/** Jobs still under a layout's shards, read through short-lived BullMQ queues on the doctor's client. */
async function jobsUnder(client: RedisClient, prefixes: string[]): Promise<number> {
  const queues = prefixes.map((prefix) => new Queue(QUEUE_NAME, { connection: client, prefix }));
  try {
    return await liveJobs(queues);
  } finally {
    await Promise.all(queues.map((q) => q.close()));
  }
}
