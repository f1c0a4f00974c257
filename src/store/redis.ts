import type { Redis } from 'ioredis';
import { keys } from './keys.js';
import * as lua from './redis-scripts.js';
import type { ClaimResult, JobState, Store } from './types.js';

type ScriptName = keyof typeof SCRIPTS;
const SCRIPTS = {
  bridgeHandOff: { lua: lua.HAND_OFF, numberOfKeys: 2 },
  bridgeClaim: { lua: lua.CLAIM, numberOfKeys: 2 },
  bridgeRenewJob: { lua: lua.RENEW_JOB, numberOfKeys: 2 },
  bridgeSaveProgress: { lua: lua.SAVE_PROGRESS, numberOfKeys: 1 },
  bridgeComplete: { lua: lua.COMPLETE, numberOfKeys: 2 },
  bridgeReleaseJob: { lua: lua.RELEASE_JOB, numberOfKeys: 2 },
  bridgeDelIfEquals: { lua: lua.DEL_IF_EQUALS, numberOfKeys: 1 },
  bridgeRenewLock: { lua: lua.RENEW_LOCK, numberOfKeys: 1 },
  bridgeClearWanted: { lua: lua.CLEAR_WANTED, numberOfKeys: 1 },
  bridgeIncrWithTtl: { lua: lua.INCR_WITH_TTL, numberOfKeys: 1 },
} as const;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/**
 * The Redis store (ioredis). Shared by every process on the same Redis and durable as far as Redis persists
 * (run it with AOF; `appendfsync always` for no loss on a Redis crash).
 * @param redis a connected client; the store owns it from here on and quits it in `close()`. Create it with
 *   `enableOfflineQueue: false` so calls fail fast while Redis is unreachable (callbacks then answer 503).
 * @param prefix prepended to every key, e.g. `bridge:` (tests use a unique prefix per file)
 */
export function createRedisStore(redis: Redis, prefix = 'bridge:'): Store {
  for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def);
  const k = (key: string) => prefix + key;
  const run = (name: ScriptName, ...args: (string | number)[]) =>
    (redis as unknown as Record<ScriptName, ScriptFn>)[name](...args);
  const due = k(keys.jobsDue());
  const job = (id: string) => k(keys.job(id));

  return {
    kind: 'redis',
    get: (key) => redis.get(k(key)),
    set: async (key, value, ttlMs) => {
      if (ttlMs === undefined) await redis.set(k(key), value);
      else await redis.set(k(key), value, 'PX', Math.max(1, Math.round(ttlMs)));
    },
    del: async (key) => {
      await redis.del(k(key));
    },
    delIfEquals: async (key, value) => (await run('bridgeDelIfEquals', k(key), value)) === 1,

    setIfAbsent: async (key, value, ttlMs) =>
      (await redis.set(k(key), value, 'PX', Math.max(1, Math.round(ttlMs)), 'NX')) === 'OK',
    incr: async (key, ttlMs) => Number(await run('bridgeIncrWithTtl', k(key), Math.max(1, Math.round(ttlMs)))),
    acquireLock: async (key, owner, ttlMs) => (await redis.set(k(key), owner, 'PX', ttlMs, 'NX')) === 'OK',
    renewLock: async (key, owner, ttlMs) => (await run('bridgeRenewLock', k(key), owner, ttlMs)) === 1,
    releaseLock: async (key, owner) => (await run('bridgeDelIfEquals', k(key), owner)) === 1,

    markWanted: async (set, member) => {
      await redis.hincrby(k(set), member, 1);
    },
    wantedGeneration: async (set, member) => Number((await redis.hget(k(set), member)) ?? 0),
    clearWanted: async (set, member, generation) =>
      (await run('bridgeClearWanted', k(set), member, generation)) === 1,
    listWanted: (set) => redis.hkeys(k(set)),

    handOff: async (jobs, leaseMs, ttlMs) => {
      if (jobs.length === 0) return [];
      const pipeline = redis.pipeline() as unknown as Record<ScriptName, (...a: (string | number)[]) => void> & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const j of jobs) pipeline.bridgeHandOff(job(j.id), due, j.id, j.payload, leaseMs, ttlMs);
      const results = (await pipeline.exec()) ?? [];
      return results.map(([err, created]) => {
        if (err) throw err;
        return created === 1;
      });
    },
    claim: async (id, owner, leaseMs): Promise<ClaimResult> => {
      const r = (await run('bridgeClaim', job(id), due, id, owner, leaseMs)) as (string | null)[];
      const status = r[0];
      if (status !== 'claimed') return { status: status as 'done' | 'busy' | 'missing' };
      const state: JobState = 'processing';
      return {
        status: 'claimed',
        job: { id, state, payload: r[1] ?? '', attempts: Number(r[2]), progress: r[3] ?? null },
      };
    },
    renewJob: async (id, owner, leaseMs) => (await run('bridgeRenewJob', job(id), due, id, owner, leaseMs)) === 1,
    saveProgress: async (id, owner, progress) =>
      (await run('bridgeSaveProgress', job(id), id, owner, progress)) === 1,
    complete: async (id, owner) => (await run('bridgeComplete', job(id), due, id, owner)) === 1,
    releaseJob: async (id, owner, delayMs = 0) =>
      (await run('bridgeReleaseJob', job(id), due, id, owner, delayMs)) === 1,
    dueJobs: (limit) => redis.zrangebyscore(due, '-inf', Date.now(), 'LIMIT', 0, limit),

    ping: async () => {
      await redis.ping();
    },
    close: async () => {
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}
