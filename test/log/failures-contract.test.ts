import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FailedReply, FailureStore } from '../../src/log/types.js';
import { createTestDatabase, mysqlUrl, type TestDatabase } from '../helpers/mysql.js';
import { BACKENDS, openHarness, type Harness } from './support.js';

type NewFailure = Parameters<FailureStore['add']>[0];
const failure = (over: Partial<NewFailure> = {}): NewFailure => ({
  channel: 'kf',
  account: 'wkAAA',
  customerId: 'cus_aaaaaaaaaaaaaaaaaaaa',
  externalId: 'wmEXT1',
  msgid: 'm1',
  parts: ['part one 😀', '[image:a.png]'],
  sent: 1,
  partIds: ['p1', 'p2'],
  errcode: 45015,
  reason: 'response out of time limit',
  ...over,
});

let db: TestDatabase | null = null;
beforeAll(async () => {
  if (mysqlUrl) db = await createTestDatabase('failures_contract');
});
afterAll(async () => {
  await db?.drop();
});

for (const b of BACKENDS) {
  describe.skipIf(!b.enabled)(`failures contract: ${b.name}`, () => {
    let h: Harness;
    let store: FailureStore;
    const open = async () => {
      h = await openHarness(b.name, db);
      store = h.layer.failures;
    };
    afterEach(async () => {
      await h?.close();
    });

    it(`${b.name}: add returns the stored failure; get reads it back`, async () => {
      await open();
      const at = Date.UTC(2031, 5, 6, 7, 8, 9, 10);
      const f = await store.add(failure({ atMs: at }));
      expect(f).toEqual<FailedReply>({ ...failure(), id: f.id, at: '2031-06-06T07:08:09.010Z', replays: 0 });
      expect(await store.get(f.id)).toEqual(f);
      expect(await store.get('999999')).toBeNull();
      expect(await store.get('nonsense')).toBeNull();
      const oa = await store.add(failure({ channel: 'mp', msgid: 'm2', partIds: [], errcode: null, sent: 0 }));
      expect(await store.get(oa.id)).toMatchObject({ channel: 'mp', partIds: [], errcode: null, sent: 0 });
    });

    it(`${b.name}: a second failure of the same message replaces the first`, async () => {
      await open();
      const first = await store.add(failure());
      const second = await store.add(failure({ reason: 'again', sent: 0 }));
      expect(second.id).not.toBe(first.id);
      expect(await store.get(first.id)).toBeNull();
      const { items } = await store.list(10, null);
      expect(items.map((f) => [f.id, f.reason])).toEqual([[second.id, 'again']]);
    });

    it(`${b.name}: list is newest first with cursor paging`, async () => {
      await open();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await store.add(failure({ msgid: `m${i}` }))).id);
      const p1 = await store.list(2, null);
      expect(p1.items.map((f) => f.msgid)).toEqual(['m4', 'm3']);
      const p2 = await store.list(2, p1.nextCursor);
      expect(p2.items.map((f) => f.msgid)).toEqual(['m2', 'm1']);
      const p3 = await store.list(2, p2.nextCursor);
      expect(p3.items.map((f) => f.msgid)).toEqual(['m0']);
      expect(p3.nextCursor).toBeNull();
      expect((await store.list(500, null)).items).toHaveLength(5);
      expect((await store.list(0, null)).items).toHaveLength(1);
      expect(await store.list(10, 'bogus')).toEqual({ items: [], nextCursor: null });
    });

    it(`${b.name}: update counts a replay and keeps the new errcode, reason and sent; remove deletes`, async () => {
      await open();
      const f = await store.add(failure());
      await store.update(f.id, { errcode: null, reason: 'connect ETIMEDOUT', sent: 2 });
      await store.update(f.id, { errcode: 95001, reason: 'still failing', sent: 2 });
      expect(await store.get(f.id)).toMatchObject({ errcode: 95001, reason: 'still failing', sent: 2, replays: 2, parts: f.parts });
      await store.update('424242', { errcode: 1, reason: 'x', sent: 0 });
      expect(await store.get('424242')).toBeNull();
      expect(await store.remove(f.id)).toBe(true);
      expect(await store.remove(f.id)).toBe(false);
      expect(await store.get(f.id)).toBeNull();
      // The message may fail again later: a new entry, found by list.
      const again = await store.add(failure());
      expect((await store.list(10, null)).items.map((x) => x.id)).toEqual([again.id]);
    });

    it(`${b.name}: forgetCustomer deletes that customer's failures only`, async () => {
      await open();
      await store.add(failure({ msgid: 'a', customerId: 'cus_gone' }));
      await store.add(failure({ msgid: 'b', customerId: 'cus_gone' }));
      const kept = await store.add(failure({ msgid: 'c', customerId: 'cus_kept' }));
      expect(await store.forgetCustomer('cus_gone')).toBe(2);
      expect((await store.list(10, null)).items.map((f) => f.id)).toEqual([kept.id]);
      expect(await store.forgetCustomer('cus_gone')).toBe(0);
    });
  });
}
