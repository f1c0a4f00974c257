/**
 * Changing QUEUE_SHARDS strands no job: jobs added under one shard count are answered by workers started with
 * another, on one Redis and on a 3-master cluster. The registry of layouts forgets an old layout only once it is
 * empty and unused for LAYOUT_STALE_MS; a deployment from before the registry gets its default layout drained too.
 */
import { Cluster, Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { createBullmqQueue } from '../../src/pipeline/bullmq-queue.js';
import type { JobContext, JobHandler, JobQueue } from '../../src/pipeline/job-queue.js';
import type { JobPayload } from '../../src/pipeline/jobs.js';
import { LAYOUT_STALE_MS } from '../../src/pipeline/queue-layouts.js';
import { queueShardPrefixes } from '../../src/pipeline/queue-shards.js';
import type { RedisClient } from '../../src/store/redis-client.js';
import { createRedisStore } from '../../src/store/redis.js';
import { clusterSeeds, connectCluster, connectRedis, redisClusterNodes, redisUrl, uniquePrefix } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = pino({ level: 'silent' });

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

const job = (user: string, msgid: string) => {
  const p: JobPayload = { channel: 'kf', type: 'kf.text', open_kfid: 'wkAcc', external_userid: user, msgid, send_time: 0, content: msgid };
  return { id: `kf:wkAcc:${user}:${msgid}`, payload: JSON.stringify(p) };
};

const variants = [
  { name: 'one redis', cluster: false, enabled: redisUrl !== '', defaultShards: 1 },
  { name: 'redis cluster', cluster: true, enabled: redisClusterNodes !== '', defaultShards: 6 },
];

for (const v of variants) {
  describe.skipIf(!v.enabled)(`changing QUEUE_SHARDS (${v.name})`, () => {
    const opened: JobQueue[] = [];
    const clients: RedisClient[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((q) => q.stop(100)));
      await Promise.all(clients.splice(0).map((c) => c.quit()));
    });

    const connect = async () => {
      const c = v.cluster ? await connectCluster() : await connectRedis();
      clients.push(c);
      return c;
    };

    /** One process's queue: `shards` as QUEUE_SHARDS; `worker` false is a ROLE=web process; `registry` false a pre-registry version. */
    async function open(base: string, shards: number, runs: JobContext[], o: { worker: boolean; registry?: boolean }) {
      const producer = await connect();
      const handler: JobHandler = {
        run: async (ctx) => {
          runs.push(ctx);
        },
        giveUp: async () => undefined,
      };
      const q = createBullmqQueue({
        producer,
        workerConnection: o.worker
          ? v.cluster
            ? new Cluster(clusterSeeds(), { redisOptions: { maxRetriesPerRequest: null } })
            : new Redis(redisUrl, { maxRetriesPerRequest: null })
          : null,
        prefix: base,
        shardPrefixes: queueShardPrefixes(base, shards, v.cluster),
        ...(o.registry === false
          ? {}
          : {
              layouts: {
                key: `${base}:queue-layouts`,
                shards,
                defaultShards: v.defaultShards,
                prefixesOf: (n: number) => queueShardPrefixes(base, n, v.cluster),
              },
            }),
        store: createRedisStore(producer, `${base}:`),
        log,
        metrics: createMetrics(),
        handler,
        leaseMs: 5000,
        dedupTtlMs: 60_000,
        concurrency: 8,
        retryDelayMs: () => 20,
      });
      opened.push(q);
      return q;
    }

    const customers = Array.from({ length: 12 }, (_, i) => job(`u${i}`, `m${i}`));

    it('jobs added under the old count are answered once by workers started with the new one; the old layout stays listed while recent', async () => {
      const base = uniquePrefix(v.cluster ? 'qlc' : 'ql').replace(/:$/, '');
      const old = v.cluster ? 6 : 1;
      const runs: JobContext[] = [];
      // A web process of the old deployment acknowledges 12 customers; then everything restarts with 3 shards.
      const web = await open(base, old, runs, { worker: false });
      expect(await web.handOff(customers)).toEqual(customers.map(() => true));
      await web.stop(100);
      const worker = await open(base, 3, runs, { worker: true });
      await until(() => runs.length >= customers.length);
      await sleep(300);
      expect(runs.map((r) => r.id).sort()).toEqual(customers.map((c) => c.id).sort());
      expect(runs.every((r) => r.attempts === 1)).toBe(true);
      // New jobs go to the new layout and are answered too.
      await worker.handOff([job('late', 'n1')]);
      await until(() => runs.some((r) => r.id.endsWith(':n1')));
      const redis = await connect();
      const listed = await redis.hgetall(`${base}:queue-layouts`);
      expect(Object.keys(listed).sort()).toEqual([String(old), '3'].sort());
      expect((await worker.counts()).waiting).toBe(0);
    });

    it('an old layout is forgotten once empty and unused for 2 h; one that still holds jobs is served however old', async () => {
      const base = uniquePrefix(v.cluster ? 'qlc' : 'ql').replace(/:$/, '');
      const runs: JobContext[] = [];
      const redis = await connect();
      const key = `${base}:queue-layouts`;
      // Layout 2 holds 4 jobs; layout 4 holds none; both last written long ago.
      const web = await open(base, 2, runs, { worker: false });
      await web.handOff(customers.slice(0, 4));
      await web.stop(100);
      const stale = String(Date.now() - LAYOUT_STALE_MS - 60_000);
      await redis.hset(key, '2', stale, '4', stale);
      await open(base, 3, runs, { worker: true });
      await until(() => runs.length >= 4);
      const listed = await redis.hgetall(key);
      expect(listed['4']).toBeUndefined();
      expect(listed['2']).toBe(stale);
      expect(listed['3']).toBeDefined();
      // The next worker start finds layout 2 empty and stale: forgotten.
      await open(base, 3, runs, { worker: true });
      let forgotten = false;
      for (let i = 0; i < 100 && !forgotten; i++) {
        forgotten = (await redis.hget(key, '2')) === null;
        if (!forgotten) await sleep(50);
      }
      expect(forgotten).toBe(true);
      expect(runs).toHaveLength(4);
    });

    it('jobs left by a version from before the registry, under the default count, are answered after a change', async () => {
      const base = uniquePrefix(v.cluster ? 'qlc' : 'ql').replace(/:$/, '');
      const runs: JobContext[] = [];
      const web = await open(base, v.defaultShards, runs, { worker: false, registry: false });
      await web.handOff(customers.slice(0, 5));
      await web.stop(100);
      await open(base, 4, runs, { worker: true });
      await until(() => runs.length >= 5);
      await sleep(200);
      expect(runs.map((r) => r.id).sort()).toEqual(customers.slice(0, 5).map((c) => c.id).sort());
    });
  });
}
