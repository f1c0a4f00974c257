import type { RedisClient } from './redis-client.js';
import * as lua from './redis-scripts.js';
import type { Store } from './types.js';

type ScriptName = keyof typeof SCRIPTS;
const SCRIPTS = {
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
export function createRedisStore(redis: RedisClient, prefix = 'bridge:'): Store {
  for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def);
  const k = (key: string) => prefix + key;
  const run = (name: ScriptName, ...args: (string | number)[]) =>
    (redis as unknown as Record<ScriptName, ScriptFn>)[name](...args);

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
