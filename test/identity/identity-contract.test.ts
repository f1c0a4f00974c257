import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isCustomerId } from '../../src/identity/customer-id.js';
import type { Identity, IdentityStore } from '../../src/identity/types.js';
import { createTestDatabase, mysqlUrl, type TestDatabase } from '../helpers/mysql.js';
import { BACKENDS, openHarness, type Harness } from '../log/support.js';

const kf = (externalId: string, account = 'wwCORP'): Identity => ({ channel: 'kf', account, externalId });
const mp = (externalId: string, account = 'wxAPP'): Identity => ({ channel: 'mp', account, externalId });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: TestDatabase | null = null;
beforeAll(async () => {
  if (mysqlUrl) db = await createTestDatabase('identity_contract');
});
afterAll(async () => {
  await db?.drop();
});

for (const b of BACKENDS) {
  describe.skipIf(!b.enabled)(`identity contract: ${b.name}`, () => {
    let h: Harness;
    let ids: IdentityStore;
    const open = async () => {
      h = await openHarness(b.name, db);
      ids = h.layer.identities;
    };
    afterEach(async () => {
      await h?.close();
    });

    it(`${b.name}: resolve creates cus_ + 20 base32 once; the same identity gets the same id`, async () => {
      await open();
      expect(ids.kind).toBe(b.kind);
      const a = await ids.resolve(kf('wmA'));
      expect(a).toMatch(/^cus_[a-z2-7]{20}$/);
      expect(isCustomerId(a)).toBe(true);
      expect(await ids.resolve(kf('wmA'))).toBe(a);
      const others = [await ids.resolve(kf('wmB')), await ids.resolve(kf('wmA', 'wwOTHER')), await ids.resolve(mp('wmA')), await ids.resolve(kf('WMA'))];
      expect(new Set([a, ...others]).size).toBe(5);
    });

    it(`${b.name}: get shows identities, nickname and first/last seen`, async () => {
      await open();
      const id = await ids.resolve(mp('oOpenId_😀'));
      const first = await ids.get(id);
      expect(first).toMatchObject({ customerId: id, identities: [mp('oOpenId_😀')], nickname: null });
      expect(Date.parse(first!.firstSeen)).toBeLessThanOrEqual(Date.parse(first!.lastSeen));
      await ids.setNickname(id, '小明 🐼');
      expect((await ids.get(id))?.nickname).toBe('小明 🐼');
      expect(await ids.get('cus_unknownunknownunkn')).toBeNull();
      expect(await ids.identityOf(id)).toEqual(mp('oOpenId_😀'));
      expect(await ids.identityOf('cus_unknownunknownunkn')).toBeNull();
      await ids.setNickname('cus_unknownunknownunkn', 'ghost');
      expect(await ids.get('cus_unknownunknownunkn')).toBeNull();
    });

    it(`${b.name}: find filters by channel, account and external id, most recently seen first`, async () => {
      await open();
      const a = await ids.resolve(kf('u1'));
      await sleep(5);
      const c = await ids.resolve(kf('u2', 'wwOTHER'));
      await sleep(5);
      const d = await ids.resolve(mp('u1'));
      const all = (r: { customerId: string }[]) => r.map((x) => x.customerId);
      expect(all(await ids.find({ limit: 10 }))).toEqual([d, c, a]);
      expect(all(await ids.find({ channel: 'kf', limit: 10 }))).toEqual([c, a]);
      expect(all(await ids.find({ account: 'wwOTHER', limit: 10 }))).toEqual([c]);
      expect(all(await ids.find({ externalId: 'u1', limit: 10 }))).toEqual([d, a]);
      expect(all(await ids.find({ channel: 'kf', account: 'wwCORP', externalId: 'u1', limit: 10 }))).toEqual([a]);
      expect(all(await ids.find({ channel: 'mp', account: 'wwCORP', limit: 10 }))).toEqual([]);
      expect(all(await ids.find({ limit: 2 }))).toEqual([d, c]);
      expect(await ids.find({ limit: 10, externalId: 'u2' })).toMatchObject([{ customerId: c, identities: [kf('u2', 'wwOTHER')] }]);
    });

    it(`${b.name}: erase deletes the customer; the identity's next message makes a new one`, async () => {
      await open();
      const before = await ids.resolve(kf('wmErase'));
      const other = await ids.resolve(kf('wmKeep'));
      expect(await ids.erase(before)).toBe(true);
      expect(await ids.erase(before)).toBe(false);
      expect(await ids.get(before)).toBeNull();
      expect(await ids.identityOf(before)).toBeNull();
      const after = await ids.resolve(kf('wmErase'));
      expect(after).not.toBe(before);
      expect(isCustomerId(after)).toBe(true);
      expect(await ids.resolve(kf('wmErase'))).toBe(after);
      expect(await ids.resolve(kf('wmKeep'))).toBe(other);
      expect((await ids.find({ externalId: 'wmErase', limit: 10 })).map((r) => r.customerId)).toEqual([after]);
    });

    if (b.kind !== 'memory') {
      it(`${b.name}: ids are stable across a new store instance on the same backend`, async () => {
        await open();
        const id = await ids.resolve(kf('wmStable'));
        await ids.setNickname(id, 'n');
        const again = (await h.another()).identities;
        expect(await again.resolve(kf('wmStable'))).toBe(id);
        expect((await again.get(id))?.nickname).toBe('n');
      });

      it(`${b.name}: two processes resolving a new identity at once agree on one id`, async () => {
        await open();
        const [p2, p3] = [await h.another(), await h.another()];
        const results = await Promise.all([ids, p2.identities, p3.identities].flatMap((s) => [s.resolve(kf('wmRace')), s.resolve(kf('wmRace'))]));
        expect(new Set(results).size).toBe(1);
        expect(await ids.find({ externalId: 'wmRace', limit: 10 })).toHaveLength(1);
      });
    }
  });
}
