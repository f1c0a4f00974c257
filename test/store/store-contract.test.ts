import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';
import { createTestClusterStore, createTestRedisStore, redisClusterNodes, redisUrl } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const variants: { name: string; make: () => Promise<Store>; enabled: boolean }[] = [
  { name: 'memory', make: async () => createMemoryStore(), enabled: true },
  { name: 'redis', make: async () => (await createTestRedisStore('store')).store, enabled: redisUrl !== '' },
  { name: 'redis cluster', make: async () => (await createTestClusterStore('store')).store, enabled: redisClusterNodes !== '' },
];

for (const v of variants) {
  describe.skipIf(!v.enabled)(`store contract: ${v.name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await v.make();
    });
    afterEach(async () => {
      await store.close();
    });

    it('get/set/del with expiry', async () => {
      expect(await store.get('a')).toBeNull();
      await store.set('a', '1');
      await store.set('b', '2', 40);
      expect(await store.get('a')).toBe('1');
      expect(await store.get('b')).toBe('2');
      await sleep(80);
      expect(await store.get('b')).toBeNull();
      await store.del('a');
      expect(await store.get('a')).toBeNull();
    });

    it('setIfAbsent: the first writer wins, the value expires', async () => {
      expect(await store.setIfAbsent('slot', 'first', 60)).toBe(true);
      expect(await store.setIfAbsent('slot', 'second', 60)).toBe(false);
      expect(await store.get('slot')).toBe('first');
      await sleep(100);
      expect(await store.setIfAbsent('slot', 'third', 60)).toBe(true);
      expect(await store.get('slot')).toBe('third');
    });

    it('incr counts from 1 and the expiry set at creation is not pushed back by later increments', async () => {
      expect(await store.incr('n', 80)).toBe(1);
      await sleep(40);
      expect(await store.incr('n', 80)).toBe(2);
      expect(await Promise.all([store.incr('n', 80), store.incr('n', 80)])).toEqual(expect.arrayContaining([3, 4]));
      await sleep(60);
      expect(await store.incr('n', 80)).toBe(1);
    });

    it('delIfEquals deletes only the expected value', async () => {
      await store.set('t', 'old');
      expect(await store.delIfEquals('t', 'other')).toBe(false);
      expect(await store.get('t')).toBe('old');
      expect(await store.delIfEquals('t', 'old')).toBe(true);
      expect(await store.get('t')).toBeNull();
    });

    it('locks: one owner at a time, expiry, owner-checked renew and release', async () => {
      expect(await store.acquireLock('l', 'A', 60)).toBe(true);
      expect(await store.acquireLock('l', 'B', 60)).toBe(false);
      expect(await store.releaseLock('l', 'B')).toBe(false);
      expect(await store.renewLock('l', 'B', 1000)).toBe(false);
      expect(await store.renewLock('l', 'A', 150)).toBe(true);
      await sleep(90);
      expect(await store.acquireLock('l', 'B', 60)).toBe(false);
      expect(await store.releaseLock('l', 'A')).toBe(true);
      expect(await store.acquireLock('l', 'B', 40)).toBe(true);
      await sleep(80);
      expect(await store.acquireLock('l', 'C', 60)).toBe(true);
    });

    it('concurrent lock attempts: exactly one wins', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.acquireLock('race', `o${i}`, 1000)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('wanted marks: generations let a worker clear only what it served', async () => {
      expect(await store.wantedGeneration('w', 'k1')).toBe(0);
      await store.markWanted('w', 'k1');
      const g = await store.wantedGeneration('w', 'k1');
      expect(g).toBeGreaterThan(0);
      await store.markWanted('w', 'k1');
      expect(await store.clearWanted('w', 'k1', g)).toBe(false);
      const g2 = await store.wantedGeneration('w', 'k1');
      expect(await store.listWanted('w')).toEqual(['k1']);
      expect(await store.clearWanted('w', 'k1', g2)).toBe(true);
      expect(await store.listWanted('w')).toEqual([]);
      expect(await store.wantedGeneration('w', 'k1')).toBe(0);
    });
  });
}
