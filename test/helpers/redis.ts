import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { inject } from 'vitest';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/types.js';

/** The Redis URL provided by test/setup/services.ts, or '' when the run has no Redis. */
export const redisUrl: string = inject('redisUrl');

/** REDIS_CLUSTER_NODES of the run's 3-master Redis Cluster (test/setup/services.ts), or '' when the run has none. */
export const redisClusterNodes: string = inject('redisClusterNodes');

/** The cluster's seeds as ioredis takes them. */
export function clusterSeeds(nodes = redisClusterNodes): { host: string; port: number }[] {
  return nodes.split(',').map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) }));
}

/** A connected cluster client configured the way the app configures its store's (fails fast). */
export async function connectCluster(nodes = redisClusterNodes): Promise<Cluster> {
  const c = new Cluster(clusterSeeds(nodes), { lazyConnect: true, enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } });
  await c.connect();
  return c;
}

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

/** A Redis store on the run's cluster, under a unique prefix. */
export async function createTestClusterStore(label: string): Promise<{ store: Store; prefix: string }> {
  const prefix = uniquePrefix(label);
  return { store: createRedisStore(await connectCluster(), prefix), prefix };
}

/** The env that points a server at the run's Redis (true) or its Redis Cluster ('cluster'); {} for the memory store. */
export function redisEnv(redis: boolean | 'cluster' | undefined): Record<string, string> {
  if (redis === 'cluster') return { REDIS_CLUSTER_NODES: redisClusterNodes };
  return redis ? { REDIS_URL: redisUrl } : {};
}
