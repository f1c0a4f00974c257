import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';
import { createTestRedisStore, redisUrl } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const variants: { name: string; make: () => Promise<Store>; enabled: boolean }[] = [
  { name: 'memory', make: async () => createMemoryStore(), enabled: true },
  { name: 'redis', make: async () => (await createTestRedisStore('store')).store, enabled: redisUrl !== '' },
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

    it('handOff dedups by id, also within one batch and against done jobs', async () => {
      expect(await store.handOff([{ id: 'j1', payload: 'p1' }, { id: 'j2', payload: 'p2' }], 1000, 10_000)).toEqual([
        true,
        true,
      ]);
      expect(await store.handOff([{ id: 'j1', payload: 'x' }, { id: 'j3', payload: 'p3' }, { id: 'j3', payload: 'y' }], 1000, 10_000)).toEqual([
        false,
        true,
        false,
      ]);
      const c = await store.claim('j1', 'A', 1000);
      expect(c.status).toBe('claimed');
      if (c.status === 'claimed') expect(c.job).toMatchObject({ id: 'j1', payload: 'p1', attempts: 1, progress: null });
      expect(await store.complete('j1', 'A')).toBe(true);
      expect(await store.handOff([{ id: 'j1', payload: 'again' }], 1000, 10_000)).toEqual([false]);
      expect((await store.claim('j1', 'B', 1000)).status).toBe('done');
    });

    it('claim: one owner under a lease; an expired lease is taken over; progress and completion are owner-checked', async () => {
      await store.handOff([{ id: 'j', payload: 'p' }], 1000, 10_000);
      expect((await store.claim('j', 'A', 80)).status).toBe('claimed');
      expect((await store.claim('j', 'B', 80)).status).toBe('busy');
      expect(await store.saveProgress('j', 'A', '{"sent":1}')).toBe(true);
      expect(await store.saveProgress('j', 'B', '{"sent":9}')).toBe(false);
      await sleep(120);
      const taken = await store.claim('j', 'B', 1000);
      expect(taken.status).toBe('claimed');
      if (taken.status === 'claimed') expect(taken.job).toMatchObject({ attempts: 2, progress: '{"sent":1}' });
      // A's lease is gone: it can neither renew, write nor finish.
      expect(await store.renewJob('j', 'A', 1000)).toBe(false);
      expect(await store.complete('j', 'A')).toBe(false);
      expect(await store.complete('j', 'B')).toBe(true);
      expect((await store.claim('j', 'A', 1000)).status).toBe('done');
      expect((await store.claim('nope', 'A', 1000)).status).toBe('missing');
    });

    it('concurrent claims: exactly one wins', async () => {
      await store.handOff([{ id: 'c', payload: 'p' }], 1000, 10_000);
      const r = await Promise.all(Array.from({ length: 10 }, (_, i) => store.claim('c', `o${i}`, 5000)));
      expect(r.filter((x) => x.status === 'claimed')).toHaveLength(1);
    });

    it('dueJobs: queued jobs after their grace, expired leases, released jobs; never done ones', async () => {
      await store.handOff([{ id: 'q', payload: 'p' }], 60, 10_000);
      await store.handOff([{ id: 'r', payload: 'p' }, { id: 'd', payload: 'p' }], 5000, 10_000);
      expect(await store.dueJobs(10)).toEqual([]);
      await store.claim('r', 'A', 5000);
      expect(await store.releaseJob('r', 'B')).toBe(false);
      expect(await store.releaseJob('r', 'A')).toBe(true);
      await store.claim('d', 'A', 5000);
      await store.complete('d', 'A');
      await sleep(100);
      const due = await store.dueJobs(10);
      expect(due.sort()).toEqual(['q', 'r']);
      expect(await store.dueJobs(1)).toHaveLength(1);
      // a renewed lease is not due
      await store.claim('q', 'A', 60);
      await sleep(40);
      expect(await store.renewJob('q', 'A', 5000)).toBe(true);
      await sleep(60);
      expect(await store.dueJobs(10)).toEqual(['r']);
    });

    it('job records expire with their TTL (dedup window)', async () => {
      await store.handOff([{ id: 'ttl', payload: 'p' }], 1000, 60);
      await sleep(100);
      expect((await store.claim('ttl', 'A', 1000)).status).toBe('missing');
      expect(await store.handOff([{ id: 'ttl', payload: 'p' }], 1000, 60)).toEqual([true]);
    });
  });
}
