import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { createBullmqQueue, QUEUE_NAME } from '../../src/pipeline/bullmq-queue.js';
import { queueShardPrefixes, shardOf, singleQueuePrefix } from '../../src/pipeline/queue-shards.js';
import { createRedisStore } from '../../src/store/redis.js';
import { clusterSeeds, connectCluster, redisClusterNodes, uniquePrefix } from '../helpers/redis.js';

const log = pino({ level: 'silent' });

describe('queue shards (layout)', () => {
  it('one Redis, one shard: the layout from before sharding, so an upgrade finds the waiting jobs', () => {
    expect(queueShardPrefixes('bridge', 1, false)).toEqual(['bridge']);
    expect(singleQueuePrefix('bridge', 'kf-pull', false)).toBe('bridge');
  });

  it('on a cluster every shard has a hash tag, and shard i sits in the i-th equal range of the slots', () => {
    for (const shards of [1, 3, 6, 12]) {
      const prefixes = queueShardPrefixes('bridge', shards, true);
      expect(prefixes).toHaveLength(shards);
      prefixes.forEach((p, i) => {
        expect(p).toMatch(/^bridge:\{q\d+-\d+\}$/);
        // every key BullMQ builds under the prefix lands in the tag's slot
        const slot = calculateSlot(`${p}:${QUEUE_NAME}:wait`);
        expect(calculateSlot(`${p}:${QUEUE_NAME}:meta`)).toBe(slot);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((i * 16384) / shards));
        expect(slot).toBeLessThan(Math.floor(((i + 1) * 16384) / shards));
      });
    }
    expect(singleQueuePrefix('bridge', 'kf-pull', true)).toBe('bridge:{kf-pull}');
  });

  it('a customer always maps to the same shard, and customers spread over all of them', () => {
    const counts = new Array<number>(6).fill(0);
    for (let u = 0; u < 600; u++) {
      const s = shardOf(`kf:wkAcc:user${u}`, 6);
      expect(shardOf(`kf:wkAcc:user${u}`, 6)).toBe(s);
      counts[s]! += 1;
    }
    for (const c of counts) expect(c).toBeGreaterThan(50);
    expect(shardOf('kf:wkAcc:anyone', 1)).toBe(0);
  });
});

describe.skipIf(!redisClusterNodes)('queue shards on a real 3-master redis cluster', () => {
  it('jobs handed off for many customers land on every master, each shard’s keys on one node', async () => {
    const prefix = uniquePrefix('shards');
    const base = prefix.replace(/:$/, '');
    const producer = await connectCluster();
    const store = createRedisStore(await connectCluster(), prefix);
    // No worker: the jobs stay where hand-off put them.
    const q = createBullmqQueue({
      producer,
      workerConnection: null,
      prefix: base,
      shardPrefixes: queueShardPrefixes(base, 6, true),
      store,
      log,
      metrics: createMetrics(),
      handler: { run: async () => undefined, giveUp: async () => undefined },
      leaseMs: 5000,
      dedupTtlMs: 60_000,
      concurrency: 4,
    });
    const admin = new Cluster(clusterSeeds());
    try {
      const jobs = Array.from({ length: 60 }, (_, u) => ({ id: `kf:wkAcc:user${u}:m1`, payload: '{}' }));
      expect((await q.handOff(jobs)).every(Boolean)).toBe(true);
      expect((await q.counts()).waiting).toBe(60);
      const perMaster = await Promise.all(
        admin.nodes('master').map(async (node) => {
          let cursor = '0';
          let n = 0;
          do {
            const [next, found] = await node.scan(cursor, 'MATCH', `${base}:{q*}:${QUEUE_NAME}:wait`, 'COUNT', 1000);
            cursor = next;
            for (const key of found) n += await node.llen(key);
          } while (cursor !== '0');
          return n;
        }),
      );
      expect(perMaster).toHaveLength(3);
      expect(perMaster.reduce((a, b) => a + b, 0)).toBe(60);
      // two shards per master, ~20 jobs each: none may be empty
      for (const n of perMaster) expect(n).toBeGreaterThan(5);
    } finally {
      await q.stop(100);
      await store.close();
      await producer.quit();
      admin.disconnect();
    }
  });
});
