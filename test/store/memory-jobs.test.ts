/**
 * The embedded mode's job records (no REDIS_URL): claim under a lease, owner-checked progress and completion,
 * release with a delay, due jobs, dedup and expiry. (With Redis, BullMQ keeps the jobs: test/pipeline/job-queue-contract.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryJobRecords, type JobRecords } from '../../src/store/memory-jobs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('memory job records', () => {
  let records: JobRecords;
  beforeEach(() => {
    records = createMemoryJobRecords();
  });
  afterEach(() => records.close());

    it('handOff dedups by id, also within one batch and against done jobs', async () => {
      expect(await records.handOff([{ id: 'j1', payload: 'p1' }, { id: 'j2', payload: 'p2' }], 1000, 10_000)).toEqual([
        true,
        true,
      ]);
      expect(await records.handOff([{ id: 'j1', payload: 'x' }, { id: 'j3', payload: 'p3' }, { id: 'j3', payload: 'y' }], 1000, 10_000)).toEqual([
        false,
        true,
        false,
      ]);
      const c = await records.claim('j1', 'A', 1000);
      expect(c.status).toBe('claimed');
      if (c.status === 'claimed') expect(c.job).toMatchObject({ id: 'j1', payload: 'p1', attempts: 1, progress: null });
      expect(await records.complete('j1', 'A')).toBe(true);
      expect(await records.handOff([{ id: 'j1', payload: 'again' }], 1000, 10_000)).toEqual([false]);
      expect((await records.claim('j1', 'B', 1000)).status).toBe('done');
    });

    it('claim: one owner under a lease; an expired lease is taken over; progress and completion are owner-checked', async () => {
      await records.handOff([{ id: 'j', payload: 'p' }], 1000, 10_000);
      expect((await records.claim('j', 'A', 80)).status).toBe('claimed');
      expect((await records.claim('j', 'B', 80)).status).toBe('busy');
      expect(await records.saveProgress('j', 'A', '{"sent":1}')).toBe(true);
      expect(await records.saveProgress('j', 'B', '{"sent":9}')).toBe(false);
      await sleep(120);
      const taken = await records.claim('j', 'B', 1000);
      expect(taken.status).toBe('claimed');
      if (taken.status === 'claimed') expect(taken.job).toMatchObject({ attempts: 2, progress: '{"sent":1}' });
      // A's lease is gone: it can neither renew, write nor finish.
      expect(await records.renewJob('j', 'A', 1000)).toBe(false);
      expect(await records.complete('j', 'A')).toBe(false);
      expect(await records.complete('j', 'B')).toBe(true);
      expect((await records.claim('j', 'A', 1000)).status).toBe('done');
      expect((await records.claim('nope', 'A', 1000)).status).toBe('missing');
    });

    it('concurrent claims: exactly one wins', async () => {
      await records.handOff([{ id: 'c', payload: 'p' }], 1000, 10_000);
      const r = await Promise.all(Array.from({ length: 10 }, (_, i) => records.claim('c', `o${i}`, 5000)));
      expect(r.filter((x) => x.status === 'claimed')).toHaveLength(1);
    });

    it('dueJobs: queued jobs after their grace, expired leases, released jobs; never done ones', async () => {
      await records.handOff([{ id: 'q', payload: 'p' }], 60, 10_000);
      await records.handOff([{ id: 'r', payload: 'p' }, { id: 'd', payload: 'p' }], 5000, 10_000);
      expect(await records.dueJobs(10)).toEqual([]);
      await records.claim('r', 'A', 5000);
      expect(await records.releaseJob('r', 'B')).toBe(false);
      expect(await records.releaseJob('r', 'A')).toBe(true);
      await records.claim('d', 'A', 5000);
      await records.complete('d', 'A');
      await sleep(100);
      const due = await records.dueJobs(10);
      expect(due.sort()).toEqual(['q', 'r']);
      expect(await records.dueJobs(1)).toHaveLength(1);
      // a renewed lease is not due
      await records.claim('q', 'A', 60);
      await sleep(40);
      expect(await records.renewJob('q', 'A', 5000)).toBe(true);
      await sleep(60);
      expect(await records.dueJobs(10)).toEqual(['r']);
    });

    it('job records expire with their TTL (dedup window)', async () => {
      await records.handOff([{ id: 'ttl', payload: 'p' }], 1000, 60);
      await sleep(100);
      expect((await records.claim('ttl', 'A', 1000)).status).toBe('missing');
      expect(await records.handOff([{ id: 'ttl', payload: 'p' }], 1000, 60)).toEqual([true]);
    });
});
