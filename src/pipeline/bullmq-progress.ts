import type { RedisClient } from '../store/redis-client.js';

/**
 * BullMQ's extendLock and updateData in one script: the lock is proved and extended, and the job's data written,
 * in one round trip instead of two (with `appendfsync always`, each round trip that writes also waits for a disk
 * flush, and a kf answer saves its progress three times). It repeats what BullMQ 6's own `extendLock-2.lua` and
 * `updateData-1.lua` do, on BullMQ's key layout (`<prefix>:<queue>:<jobId>`, its `:lock`, the queue's `:stalled`):
 * bullmq is pinned to an exact version in package.json, and a test checks the layout.
 *
 * KEYS: job hash, its lock, the queue's stalled set · ARGV: token, lock ms, job id, data JSON
 * → 1 saved · 0 the lock is not ours (nothing written) · -1 the job is gone
 */
const SAVE_PROGRESS = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('SREM', KEYS[3], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'data', ARGV[4])
return 1`;

type SaveFn = (jobKey: string, lockKey: string, stalledKey: string, token: string, lockMs: number, jobId: string, data: string) => Promise<number>;

/** Saves one job's data under its lock: 1 saved, 0 lock lost, -1 job gone; throws the client's error. */
export type SaveJobData = (jobId: string, token: string, lockMs: number, data: string) => Promise<number>;

/**
 * Defines the script on `client` (once) and returns, per queue, the save.
 * @returns queueKey (BullMQ's key of one queue, `<prefix>:<queue name>`; one shard's keys share its hash tag) →
 *   (jobId, token, lockMs in ms, data JSON) → 1 saved · 0 the lock is not ours · -1 the job is gone
 */
export function progressSaver(client: RedisClient): (queueKey: string) => SaveJobData {
  client.defineCommand('bridgeSaveJobProgress', { lua: SAVE_PROGRESS, numberOfKeys: 3 });
  const run = (client as unknown as { bridgeSaveJobProgress: SaveFn }).bridgeSaveJobProgress.bind(client);
  return (queueKey) => (jobId, token, lockMs, data) => run(`${queueKey}:${jobId}`, `${queueKey}:${jobId}:lock`, `${queueKey}:stalled`, token, lockMs, jobId, data);
}
