/**
 * The store's cluster client keeps working when a slot moves to another master (a reshard; a failover moves slots
 * the same way as far as the client sees): on a throw-away 3-master cluster, a slot is migrated with its key while
 * the client knows the old map, and the commands that follow, sent together as the pipeline sends them, all land.
 * With ioredis auto-pipelining on a cluster this failed: every command on the moved slot came back MOVED, batch
 * after batch (redis/ioredis#2075), which is why src/store/redis-client.ts never pipelines on a cluster.
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
