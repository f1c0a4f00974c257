import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config, RedisClusterConfig } from '../config.js';
import { StartupError } from '../errors.js';
import type { Metrics } from '../metrics.js';

/**
 * A connection to one Redis (REDIS_URL) or to a Redis Cluster (REDIS_CLUSTER_NODES). Both speak the same commands;
 * on a cluster, every key that one script or one MULTI touches must share a hash tag (`{…}`): see keys.ts,
 * queue-shards.ts and log/redis-keys.ts for how the bridge lays its keys out.
 */
export type RedisClient = Redis | Cluster;

/** Where the bridge's Redis is: one server, or a cluster's seeds. */
export type RedisTarget = { kind: 'single'; url: string } | { kind: 'cluster'; cluster: RedisClusterConfig };

/** The configured Redis, or null (the in-process memory store). */
export function redisTargetOf(config: Pick<Config, 'redisUrl' | 'redisCluster'>): RedisTarget | null {
  if (config.redisCluster) return { kind: 'cluster', cluster: config.redisCluster };
  return config.redisUrl ? { kind: 'single', url: config.redisUrl } : null;
}

/** What a start-up error names: the variable and a value without the password. */
function describe(t: RedisTarget): { variable: string; value: string } {
  return t.kind === 'single'
    ? { variable: 'REDIS_URL', value: t.url }
    : { variable: 'REDIS_CLUSTER_NODES', value: t.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',') };
}

/** Per-node options shared by both kinds of client (ms). */
interface NodeOptions {
  connectTimeout: number;
  commandTimeout?: number;
  /** null: wait through an outage (BullMQ's blocking clients need it); a number: fail after that many retries */
  maxRetriesPerRequest: number | null;
  enableOfflineQueue: boolean;
  lazyConnect?: boolean;
  /**
   * Commands issued in the same event-loop turn go out as one write (ioredis auto-pipelining): under load, the
   * callbacks' and jobs' many small commands share socket writes and Redis's replies (and, with
   * `appendfsync always`, its disk flushes) instead of one each. One Redis only: see newClient.
   */
  enableAutoPipelining?: boolean;
}

function newClient(t: RedisTarget, o: NodeOptions): RedisClient {
  if (t.kind === 'single') return new Redis(t.url, o);
  // Never auto-pipelining on a cluster: ioredis (6.0.0, redis/ioredis#2075) answers a MOVED for a whole auto-pipeline
  // and keeps routing the moved slot to its old node, so after a reshard or a failover every command on that slot
  // failed with MOVED, batch after batch (test/store/cluster-topology.test.ts). Plain commands follow the redirect.
  const { enableOfflineQueue, lazyConnect, enableAutoPipelining: _pipelining, ...node } = o;
  return new Cluster(t.cluster.nodes, {
    enableOfflineQueue,
    lazyConnect: lazyConnect ?? false,
    enableAutoPipelining: false,
    // The seeds only lead to the slot map: from then on the client connects to the addresses the nodes announce in
    // CLUSTER SLOTS (their cluster-announce-ip), which must be reachable from here (docs/redis-cluster.md).
    redisOptions: { ...node, ...(t.cluster.password ? { password: t.cluster.password } : {}) },
  });
}

/**
 * Connects the store's client: it fails fast while Redis is away (callbacks answer 503 and WeChat retries) instead of
 * queueing in memory, and a Redis that stops answering (a network black hole, not a refused connection) turns
 * callbacks into 503s too (2 s command timeout), not hanging them past WeChat's 5 s.
 * @throws StartupError naming REDIS_URL or REDIS_CLUSTER_NODES when it cannot connect at start (3 s connect timeout)
 */
export async function connectRedis(t: RedisTarget, log: Logger, metrics: Metrics): Promise<RedisClient> {
  const redis = newClient(t, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 3000, commandTimeout: 2000, enableAutoPipelining: true });
  // ioredis rejects connect() with "Connection is closed."; the reason (ECONNREFUSED, ENOTFOUND, a wrong password)
  // arrives as an 'error' event: keep it for the one start-up line.
  let reason: string | null = null;
  let started = false;
  const onError = (err: Error) => {
    reason ??= err.message;
    if (started) log.warn({ err: { message: err.message } }, 'redis connection error');
  };
  redis.on('error', onError);
  // A cluster reports a node's trouble as 'node error' (the client goes on with the other nodes).
  if (t.kind === 'cluster') redis.on('node error', (err: Error) => onError(err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    const d = describe(t);
    throw new StartupError(d.variable, d.value, reason ?? (e instanceof Error ? e.message : String(e)));
  }
  started = true;
  metrics.redisUp?.set(1);
  redis.on('ready', () => metrics.redisUp?.set(1));
  redis.on('close', () => metrics.redisUp?.set(0));
  return redis;
}

/** A BullMQ worker's client: it waits and reconnects through an outage instead of failing its commands. */
export function connectWorkerRedis(t: RedisTarget, log: Logger): RedisClient {
  const redis = newClient(t, { maxRetriesPerRequest: null, connectTimeout: 3000, enableOfflineQueue: true });
  redis.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'redis (worker) connection error'));
  return redis;
}

/**
 * A second connection to the same Redis that waits through an outage (offline queue on, unlimited retries): for
 * subscribers, which must come back by themselves after Redis does.
 */
export function duplicatePatient(c: RedisClient): RedisClient {
  if (c instanceof Cluster) {
    // Cluster#duplicate merges options shallowly: carry the per-node options over whole.
    return c.duplicate(undefined, { enableOfflineQueue: true, lazyConnect: false, redisOptions: { ...c.options.redisOptions, maxRetriesPerRequest: null } });
  }
  return c.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false });
}
