import { Cluster, Redis } from 'ioredis';
import { DEFAULT_CLUSTER_SHARDS, type RedisClusterConfig } from '../config.js';
import { maskCredentials } from '../errors.js';
import { checkQueueLayouts } from './queue-layouts.js';
import { fail, messageOf, pass, warn, type ClockSample, type DoctorResult } from './types.js';

/** What the Redis checks take: the clock, and the queue layout the configuration uses. */
interface RedisCheckOptions {
  now: () => number;
  onClock?: (s: ClockSample) => void;
  /** QUEUE_SHARDS as configured (default 1, or 6 on a cluster) */
  queueShards?: number;
  /** key prefix without its colon (default `bridge`) */
  prefix?: string;
}

/**
 * REDIS_URL: reachable; `maxmemory-policy noeviction` (an evicting Redis drops queued jobs, dedup marks and locks
 * under memory pressure); AOF on (else an accepted message can be lost when Redis restarts). Reads `INFO`, which
 * managed Redis services allow where `CONFIG GET` is often renamed away.
 * @param onClock receives Redis's `TIME`
 */
export async function checkRedis(url: string, o: RedisCheckOptions): Promise<DoctorResult[]> {
  const shown = maskCredentials(url);
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 3000, commandTimeout: 3000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  let reason: string | null = null;
  redis.on('error', (e: Error) => {
    reason ??= e.message;
  });
  try {
    try {
      await redis.connect();
      await redis.ping();
    } catch (e) {
      const why = reason ?? messageOf(e);
      const auth = AUTH_REFUSED.test(why);
      return [
        fail(
          'Redis',
          `${shown} unreachable: ${why}`,
          auth ? 'put the right password in REDIS_URL (redis://:password@host:6379/0)' : 'start Redis or correct REDIS_URL (host, port, TLS: rediss://)',
        ),
      ];
    }
    await readClock(redis, o);
    const info = parseInfo(await redis.info());
    return [
      pass('Redis', `${shown} answers (Redis ${info.redis_version ?? '?'})`),
      ...(await nodeSettings(redis, info, '')),
      ...(await checkQueueLayouts(redis, { shards: o.queueShards ?? 1, defaultShards: 1, cluster: false, now: o.now, ...(o.prefix ? { prefix: o.prefix } : {}) })),
    ];
  } catch (e) {
    return [fail('Redis', `${shown}: ${messageOf(reason ?? e)}`, 'check that REDIS_URL points at a Redis server that answers INFO and TIME')];
  } finally {
    redis.disconnect();
  }
}

/**
 * REDIS_CLUSTER_NODES: the cluster answers and is `cluster_state:ok`, and every master has `noeviction` and AOF on
 * (each master holds a share of the queues: one evicting or AOF-less master is enough to lose messages).
 * @param onClock receives the first master's `TIME`
 */
export async function checkRedisCluster(
  cluster: RedisClusterConfig,
  o: RedisCheckOptions,
): Promise<DoctorResult[]> {
  const shown = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const client = new Cluster(cluster.nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: () => null,
    redisOptions: { connectTimeout: 3000, commandTimeout: 3000, maxRetriesPerRequest: 0, ...(cluster.password ? { password: cluster.password } : {}) },
  });
  let reason: string | null = null;
  const onError = (e: Error) => {
    reason ??= e.message;
  };
  client.on('error', onError);
  client.on('node error', onError);
  try {
    try {
      await client.connect();
      await client.ping();
    } catch (e) {
      const why = reason ?? messageOf(e);
      const auth = AUTH_REFUSED.test(why);
      return [fail('Redis Cluster', `${shown} unreachable: ${why}`, auth ? 'put the nodes\' password in REDIS_PASSWORD' : 'start the cluster or correct REDIS_CLUSTER_NODES (host:port of any nodes)')];
    }
    const masters = client.nodes('master');
    const state = parseInfo(String(await masters[0]!.cluster('INFO')));
    const results: DoctorResult[] = [];
    if (state.cluster_state === 'ok') {
      results.push(pass('Redis Cluster', `${shown}: cluster_state ok, ${masters.length} masters, ${state.cluster_slots_assigned ?? '?'} slots assigned`));
    } else {
      results.push(fail('Redis Cluster', `${shown}: cluster_state ${state.cluster_state ?? 'unknown'}`, 'assign every slot to a reachable master (redis-cli --cluster check / fix)'));
    }
    await readClock(masters[0]!, o);
    for (const node of masters) {
      const label = ` (${node.options.host ?? '?'}:${node.options.port ?? '?'})`;
      results.push(...(await nodeSettings(node, parseInfo(await node.info()), label)));
    }
    const shards = o.queueShards ?? DEFAULT_CLUSTER_SHARDS;
    results.push(...(await checkQueueLayouts(client, { shards, defaultShards: DEFAULT_CLUSTER_SHARDS, cluster: true, now: o.now, ...(o.prefix ? { prefix: o.prefix } : {}) })));
    return results;
  } catch (e) {
    return [fail('Redis Cluster', `${shown}: ${messageOf(reason ?? e)}`, 'check that REDIS_CLUSTER_NODES names nodes of a Redis Cluster that answer CLUSTER INFO, INFO and TIME')];
  } finally {
    client.disconnect();
  }
}

/** How Redis says a password is missing or wrong. */
const AUTH_REFUSED = /NOAUTH|WRONGPASS|invalid password|invalid username/i;

/** Redis's `TIME`, timed from here, for the clock check (ms). */
async function readClock(redis: Redis, o: { now: () => number; onClock?: (s: ClockSample) => void }): Promise<void> {
  const sentAt = o.now();
  const [seconds, micros] = await redis.time();
  const receivedAt = o.now();
  o.onClock?.({ source: 'Redis TIME', remoteMs: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), localMs: (sentAt + receivedAt) / 2, resolutionMs: receivedAt - sentAt });
}

/** maxmemory-policy and AOF of one server; `label` names the node on a cluster. */
async function nodeSettings(redis: Redis, info: Record<string, string>, label: string): Promise<DoctorResult[]> {
  const results: DoctorResult[] = [];
  const policy = info.maxmemory_policy;
  if (policy === undefined) {
    results.push(warn(`Redis maxmemory-policy${label}`, 'INFO does not report it', 'make sure the server runs with maxmemory-policy noeviction'));
  } else if (policy === 'noeviction') {
    results.push(pass(`Redis maxmemory-policy${label}`, 'noeviction'));
  } else {
    results.push(
      fail(
        `Redis maxmemory-policy${label}`,
        `${policy}: under memory pressure Redis evicts keys, queued jobs (BullMQ), dedup marks and locks among them`,
        'set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction and CONFIG REWRITE)',
      ),
    );
  }
  if (info.aof_enabled === '1') {
    const fsync = await appendfsync(redis);
    results.push(
      fsync === 'always' || fsync === null
        ? pass(`Redis AOF${label}`, `appendonly yes${fsync ? `, appendfsync ${fsync}` : ''}`)
        : warn(`Redis AOF${label}`, `appendonly yes, appendfsync ${fsync}: a crash of the Redis host can lose the last second of writes`, 'appendfsync always for no loss at all'),
    );
  } else {
    results.push(
      fail(
        `Redis AOF${label}`,
        `appendonly ${info.aof_enabled === undefined ? 'unknown' : 'no'}: messages may be lost on a Redis restart`,
        'set appendonly yes (redis.conf, or CONFIG SET appendonly yes and CONFIG REWRITE); appendfsync always for no loss at all',
      ),
    );
  }
  return results;
}

/** `appendfsync` from CONFIG GET, or null where CONFIG is not allowed. */
async function appendfsync(redis: Redis): Promise<string | null> {
  try {
    const v = (await redis.config('GET', 'appendfsync')) as unknown;
    return Array.isArray(v) && typeof v[1] === 'string' ? v[1] : null;
  } catch {
    return null;
  }
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}
