/**
 * The Redis side of the scale-out figure (scale.ts): one Redis (a database per run) or a 3-master Redis Cluster
 * (test/setup/redis-cluster.ts, emptied between runs), what the servers are told to use, and the CPU Redis spent.
 */
import { Redis } from 'ioredis';
import { startRedisCluster } from '../../test/setup/redis-cluster.js';

/** Where the web and worker processes meet. */
export interface ScaleBackend {
  name: 'one Redis' | 'cluster';
  /** the servers' Redis variables for run `run` (0-based): a clean keyspace each time */
  env(run: number): Promise<Record<string, string>>;
  /** CPU the Redis server(s) used so far (used_cpu_user + used_cpu_sys of INFO, all nodes), s */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** Lowest database the scale runs use on the bench's Redis (0–2: kf and bot figures, 3–5: mp, 6: slow). */
const FIRST_DB = 7;

async function infoCpu(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/**
 * The bench's own Redis (or BENCH_REDIS_URL): run k gets database FIRST_DB + k, so nothing a previous run queued is
 * run again and a Redis that is not ours is never flushed.
 * @param url `redis://host:port` without a database
 */
export function oneRedis(url: string): ScaleBackend {
  const client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  return {
    name: 'one Redis',
    env: async (run) => ({ REDIS_URL: `${url}/${FIRST_DB + run}` }),
    cpuSeconds: () => infoCpu(client),
    stop: async () => void client.disconnect(),
  };
}

/**
 * A throw-away 3-master Redis Cluster (AOF on, fsync on every write like the bench's single Redis) given to the servers as
 * REDIS_CLUSTER_NODES; every master is flushed before each run (one keyspace only in a cluster).
 * @throws when the cluster cannot be started (no redis-server / redis-cli, or not ok in 20 s)
 */
export async function redisCluster(): Promise<ScaleBackend> {
  const cluster = await startRedisCluster({ masters: 3, appendonly: true, appendfsync: 'always' });
  const nodes = cluster.ports.map((port) => new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 }));
  return {
    name: 'cluster',
    env: async () => {
      await Promise.all(nodes.map((n) => n.flushall()));
      return { REDIS_CLUSTER_NODES: cluster.nodes };
    },
    cpuSeconds: async () => (await Promise.all(nodes.map(infoCpu))).reduce((a, b) => a + b, 0),
    stop: async () => {
      for (const n of nodes) n.disconnect();
      await cluster.stop();
    },
  };
}
