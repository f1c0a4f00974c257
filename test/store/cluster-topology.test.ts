/**
 * The cluster clients keep working when the cluster's topology changes, on throw-away clusters of their own:
 * - a slot migrated to another master with its key while the client knows the old map: the commands that follow,
 *   sent together as the pipeline sends them, all land. With ioredis auto-pipelining on a cluster this failed: every
 *   command on the moved slot came back MOVED, batch after batch (redis/ioredis#2075), which is why
 *   src/store/redis-client.ts never pipelines on a cluster;
 * - a master killed with kill -9 (3 masters with a replica each): once its replica has taken over, the store's
 *   commands land again. Writes made just before the kill are not asserted: replication is asynchronous, and
 *   docs/redis-cluster.md says a failover can lose them. The BullMQ workers are not asserted here: in CI their
 *   jobs on the failed-over shards sometimes waited more than 30 s (docs/redis-cluster.md, an open problem).
 */
import { spawnSync } from 'node:child_process';
import calculateSlot from 'cluster-key-slot';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { connectRedis, type RedisClient } from '../../src/store/redis-client.js';
import { createRedisStore } from '../../src/store/redis.js';
import { canStartRedisCluster, startRedisCluster, type RedisClusterServers } from '../setup/redis-cluster.js';

const cli = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();

/** The first `<name><i>` hash tag whose slot is in [from, to) and not `not`. */
function tagIn(name: string, from: number, to: number, not = -1): string {
  for (let i = 0; ; i++) {
    const slot = calculateSlot(`${name}${i}`);
    if (slot >= from && slot < to && slot !== not) return `${name}${i}`;
  }
}

describe.skipIf(!canStartRedisCluster())('store on a redis cluster whose slots move', () => {
  let cluster: RedisClusterServers;
  let client: RedisClient;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
    client = await connectRedis({ kind: 'cluster', cluster: { nodes, password: null } }, pino({ level: 'silent' }), createMetrics());
  }, 30_000);
  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it('a slot migrated to another master: the commands that follow, on it and beside it, all succeed', async () => {
    const store = createRedisStore(client, 'topo:');
    // Two keys on the first master (slots 0–5460 after --cluster create), in different slots; one of them moves.
    const stays = tagIn('s', 0, 5000);
    const moves = tagIn('m', 0, 5000, calculateSlot(stays));
    const slot = calculateSlot(moves);
    const [from, to] = [cluster.ports[0]!, cluster.ports[1]!];
    const [fromId, toId] = [cli(from, 'cluster', 'myid'), cli(to, 'cluster', 'myid')];
    await store.set(`{${stays}}:n`, '0', 60_000);
    await store.set(`{${moves}}:n`, '0', 60_000);
    expect(await Promise.all([store.get(`{${stays}}:n`), store.get(`{${moves}}:n`)])).toEqual(['0', '0']);

    // Move the slot with its key, the way redis-cli --cluster reshard does.
    cli(to, 'cluster', 'setslot', String(slot), 'importing', fromId);
    cli(from, 'cluster', 'setslot', String(slot), 'migrating', toId);
    expect(cli(from, 'migrate', '127.0.0.1', String(to), '', '0', '5000', 'keys', `topo:{${moves}}:n`)).toBe('OK');
    for (const port of cluster.ports) cli(port, 'cluster', 'setslot', String(slot), 'node', toId);

    const failures: string[] = [];
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.allSettled([
        store.incr(`{${stays}}:n`, 60_000),
        store.incr(`{${moves}}:n`, 60_000),
        store.setIfAbsent(`{${moves}}:mark${round}`, '1', 60_000),
        store.acquireLock(`{${moves}}:lock${round}`, 'owner', 60_000),
        store.get(`{${moves}}:n`),
      ]);
      for (const r of results) if (r.status === 'rejected') failures.push(`round ${round}: ${String((r.reason as Error).message)}`);
    }
    expect(failures).toEqual([]);
    expect(await Promise.all([store.get(`{${stays}}:n`), store.get(`{${moves}}:n`)])).toEqual(['5', '5']);
    // The key really lives on the new master now.
    expect(cli(to, 'cluster', 'countkeysinslot', String(slot))).not.toBe('0');
    expect(cli(from, 'cluster', 'countkeysinslot', String(slot))).toBe('0');
  });
});

describe.skipIf(!canStartRedisCluster())('store on a redis cluster whose master dies', () => {
  let cluster: RedisClusterServers;
  let client: RedisClient;
  beforeAll(async () => {
    // A 2 s node timeout: the replica takes over within seconds (a deployment's is usually 5–15 s), and a busy CI
    // machine does not make the masters suspect each other.
    cluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
    const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
    client = await connectRedis({ kind: 'cluster', cluster: { nodes, password: null } }, pino({ level: 'silent' }), createMetrics());
  }, 30_000);
  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it('kill -9 of a master: within 15 s the store answers again on every slot', async () => {
    const store = createRedisStore(client, 'fo:');
    const keys = Array.from({ length: 30 }, (_, i) => `k{${i}}`);
    // Before: every key answers, and each replica has caught up with its master.
    await Promise.all(keys.map((k) => store.set(k, '0', 600_000)));
    const masters = cluster.ports.filter((p) => /role:master/.test(cli(p, 'info', 'replication')));
    for (const until = Date.now() + 10_000; Date.now() < until; await sleep(100)) {
      if (cluster.ports.filter((p) => /master_link_status:up/.test(cli(p, 'info', 'replication'))).length === 3) break;
    }

    const killedAt = Date.now();
    cluster.kill(masters[0]!);
    let recoveredMs = NaN;
    for (const until = killedAt + 15_000; Date.now() < until; await sleep(200)) {
      const round = await Promise.allSettled(keys.map((k) => store.incr(k, 600_000)));
      if (round.every((r) => r.status === 'fulfilled')) {
        recoveredMs = Date.now() - killedAt;
        break;
      }
    }
    expect(recoveredMs).toBeLessThan(15_000);
  }, 60_000);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
