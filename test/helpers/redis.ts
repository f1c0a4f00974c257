import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/types.js';

/** The Redis URL provided by test/setup/services.ts, or '' when the run has no Redis. */
export const redisUrl: string = inject('redisUrl');

/** A key prefix unique to one test file or case, so files can share one Redis. */
export function uniquePrefix(label: string): string {
  return `test:${label}:${randomBytes(4).toString('hex')}:`;
}

/** A connected client configured the way the app configures its own. */
export async function connectRedis(url = redisUrl): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await redis.connect();
  return redis;
}

export async function createTestRedisStore(label: string): Promise<{ store: Store; prefix: string }> {
  const prefix = uniquePrefix(label);
  return { store: createRedisStore(await connectRedis(), prefix), prefix };
}
