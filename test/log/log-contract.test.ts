import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LogQuery, MessageLog } from '../../src/log/types.js';
import { createTestDatabase, mysqlUrl, type TestDatabase } from '../helpers/mysql.js';
import { BACKENDS, inbound, openHarness, outbound, type Harness } from './support.js';

const page = (over: Partial<LogQuery> = {}): LogQuery => ({ limit: 50, cursor: null, ...over });
const msgids = async (log: MessageLog, q: Partial<LogQuery> = {}) => (await log.query(page(q))).items.map((r) => r.msgid);

let db: TestDatabase | null = null;
beforeAll(async () => {
  if (mysqlUrl) db = await createTestDatabase('log_contract');
});
afterAll(async () => {
  await db?.drop();
});

for (const b of BACKENDS) {
  describe.skipIf(!b.enabled)(`message log contract: ${b.name}`, () => {
    let h: Harness;
    const open = async (data: Parameters<typeof openHarness>[2] = {}) => {
      h = await openHarness(b.name, db, data);
      return h.layer.log;
    };
    afterEach(async () => {
      await h?.close();
    });

    it(`${b.name}: record and query: newest first, every field round-trips, absent fields are null`, async () => {
      const log = await open();
      expect(log.kind).toBe(b.kind);
      const at = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
      const i = inbound({ msgid: 'm-in', content: 'hi 你好 😀', atMs: Date.now() - 1000 });
      log.record(i);
      log.record(
        outbound({ msgid: 'm-out', replyTo: 'm-in', agent: 'default', latencyMs: 1234, inputTokens: 10, outputTokens: 20, errcode: -1, status: 'failed', atMs: at }),
      );
      await log.flush();
      const { items, nextCursor } = await log.query(page());
      expect(nextCursor).toBeNull();
      expect(items.map((r) => r.msgid)).toEqual(['m-out', 'm-in']);
      const [out, inb] = items;
      expect(out).toMatchObject({
        direction: 'out', channel: 'kf', account: 'wkAAA', customerId: 'cus_aaaaaaaaaaaaaaaaaaaa', externalId: 'wmEXT1', type: 'answer',
        status: 'failed', agent: 'default', latencyMs: 1234, inputTokens: 10, outputTokens: 20, replyTo: 'm-in', errcode: -1, at: '2030-01-02T03:04:05.678Z',
      });
      expect(inb).toMatchObject({ content: 'hi 你好 😀', length: 7, status: 'pending', agent: null, latencyMs: null, inputTokens: null, outputTokens: null, replyTo: null, errcode: null });
      expect(typeof inb!.id).toBe('string');
      expect(inb!.id).not.toBe(out!.id);
      expect(log.health()).toEqual({ ok: true, buffered: 0, dropped: 0, lastError: null });
    });

    it(`${b.name}: settle after the row was written changes status and the LLM fields; absent fields stay`, async () => {
      const log = await open();
      log.record(inbound({ msgid: 's1' }));
      await log.flush();
      log.settle({ channel: 'kf', account: 'wkAAA', msgid: 's1' }, { status: 'answered', agent: 'sales', latencyMs: 900, inputTokens: 5, outputTokens: 7 });
      await log.flush();
      log.settle({ channel: 'kf', account: 'wkAAA', msgid: 's1' }, { status: 'failed' });
      await log.flush();
      const [row] = (await log.query(page())).items;
      expect(row).toMatchObject({ msgid: 's1', status: 'failed', agent: 'sales', latencyMs: 900, inputTokens: 5, outputTokens: 7 });
      // The same msgid on another account is another message.
      log.settle({ channel: 'kf', account: 'wkOTHER', msgid: 's1' }, { status: 'skipped' });
      await log.flush();
      expect((await log.query(page()))?.items[0]?.status).toBe('failed');
    });

    it(`${b.name}: settle before the row: merged while both wait, and applied when written before the row`, async () => {
      const log = await open();
      log.settle({ channel: 'mp', account: 'wxAPP', msgid: 'early1' }, { status: 'answered', agent: 'a1' });
      log.record(inbound({ channel: 'mp', account: 'wxAPP', msgid: 'early1' }));
      log.settle({ channel: 'mp', account: 'wxAPP', msgid: 'early2' }, { status: 'fallback', latencyMs: 60_000 });
      await log.flush();
      log.record(inbound({ channel: 'mp', account: 'wxAPP', msgid: 'early2' }));
      await log.flush();
      const rows = (await log.query(page({ channel: 'mp' }))).items;
      expect(rows.map((r) => [r.msgid, r.status])).toEqual([
        ['early2', 'fallback'],
        ['early1', 'answered'],
      ]);
      expect(rows[0]).toMatchObject({ latencyMs: 60_000, agent: null });
      expect(rows[1]).toMatchObject({ agent: 'a1' });
      expect(await log.query(page({ status: 'fallback' }))).toMatchObject({ items: [{ msgid: 'early2' }] });
    });

    it(`${b.name}: query filters: channel, account, customer, direction, status, time range, text`, async () => {
      const log = await open();
      const t0 = Date.now() - 60_000;
      log.record(inbound({ msgid: 'a', channel: 'kf', account: 'acc1', customerId: 'cus_1', atMs: t0, content: 'Price of 100% cotton_shirt?' }));
      log.record(inbound({ msgid: 'b', channel: 'mp', account: 'acc2', customerId: 'cus_2', atMs: t0 + 10_000, content: '退货 return' }));
      log.record(outbound({ msgid: 'c', channel: 'mp', account: 'acc2', customerId: 'cus_2', atMs: t0 + 20_000, content: 'OK, RETURN accepted', type: 'answer' }));
      log.record(inbound({ msgid: 'd', channel: 'bot', account: 'acc3', customerId: 'cus_1', atMs: t0 + 30_000, content: '100 cotton shirts' }));
      await log.flush();
      log.settle({ channel: 'kf', account: 'acc1', msgid: 'a' }, { status: 'answered' });
      await log.flush();
      expect(await msgids(log)).toEqual(['d', 'c', 'b', 'a']);
      expect(await msgids(log, { channel: 'mp' })).toEqual(['c', 'b']);
      expect(await msgids(log, { account: 'acc1' })).toEqual(['a']);
      expect(await msgids(log, { customerId: 'cus_1' })).toEqual(['d', 'a']);
      expect(await msgids(log, { direction: 'out' })).toEqual(['c']);
      expect(await msgids(log, { status: 'answered' })).toEqual(['a']);
      expect(await msgids(log, { status: 'pending' })).toEqual(['d', 'b']);
      expect(await msgids(log, { fromMs: t0 + 10_000, toMs: t0 + 20_000 })).toEqual(['c', 'b']);
      expect(await msgids(log, { fromMs: t0 + 20_001 })).toEqual(['d']);
      expect(await msgids(log, { toMs: t0 })).toEqual(['a']);
      // Case-insensitive; % and _ are literal characters, not wildcards.
      expect(await msgids(log, { text: 'return' })).toEqual(['c', 'b']);
      expect(await msgids(log, { text: '100%' })).toEqual(['a']);
      expect(await msgids(log, { text: 'cotton_' })).toEqual(['a']);
      expect(await msgids(log, { text: '退货' })).toEqual(['b']);
      expect(await msgids(log, { channel: 'mp', direction: 'in', customerId: 'cus_2', text: 'RETURN' })).toEqual(['b']);
      expect(await msgids(log, { channel: 'openai-compat' })).toEqual([]);
    });

    it(`${b.name}: cursor paging covers every row once; a foreign cursor gives an empty page`, async () => {
      const log = await open();
      for (let i = 0; i < 7; i++) log.record(inbound({ msgid: `p${i}`, customerId: i % 2 ? 'cus_odd' : 'cus_even' }));
      await log.flush();
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await log.query(page({ limit: 2, cursor }));
        seen.push(...res.items.map((r) => r.msgid));
        cursor = res.nextCursor;
        pages++;
      } while (cursor !== null && pages < 10);
      expect(seen).toEqual(['p6', 'p5', 'p4', 'p3', 'p2', 'p1', 'p0']);
      expect(pages).toBe(4);
      // With a filter: pages only of matching rows.
      const first = await log.query(page({ limit: 2, customerId: 'cus_even' }));
      expect(first.items.map((r) => r.msgid)).toEqual(['p6', 'p4']);
      const second = await log.query(page({ limit: 2, customerId: 'cus_even', cursor: first.nextCursor }));
      expect(second.items.map((r) => r.msgid)).toEqual(['p2', 'p0']);
      expect(second.nextCursor).toBeNull();
      expect(await log.query(page({ cursor: 'not-a-cursor' }))).toEqual({ items: [], nextCursor: null });
    });

    it(`${b.name}: limit is clamped to 1–200`, async () => {
      const log = await open();
      for (let i = 0; i < 205; i++) log.record(inbound({ msgid: `l${i}` }));
      await log.flush();
      const big = await log.query(page({ limit: 500 }));
      expect(big.items).toHaveLength(200);
      expect(big.items[0]!.msgid).toBe('l204');
      expect(big.nextCursor).toBe(big.items[199]!.id);
      const rest = await log.query(page({ limit: 500, cursor: big.nextCursor }));
      expect(rest.items.map((r) => r.msgid)).toEqual(['l4', 'l3', 'l2', 'l1', 'l0']);
      expect((await log.query(page({ limit: 0 }))).items).toHaveLength(1);
      expect((await log.query(page({ limit: -5 }))).items).toHaveLength(1);
      expect((await log.query(page({ limit: 2.7 }))).items).toHaveLength(2);
    });

    it(`${b.name}: counts inbound rows since a time by outcome`, async () => {
      const log = await open();
      const now = Date.now();
      const statuses = ['answered', 'answered', 'fallback', 'failed', 'skipped', 'pending'] as const;
      statuses.forEach((s, i) => log.record(inbound({ msgid: `c${i}`, status: s, atMs: now - 1000 })));
      log.record(inbound({ msgid: 'old', status: 'answered', atMs: now - 2 * 3600_000 }));
      log.record(outbound({ msgid: 'o1', atMs: now - 1000 }));
      await log.flush();
      log.settle({ channel: 'kf', account: 'wkAAA', msgid: 'c5' }, { status: 'failed' });
      await log.flush();
      expect(await log.counts(now - 3600_000)).toEqual({ received: 6, answered: 2, fallback: 1, failed: 2 });
      expect(await log.counts(now - 3 * 3600_000)).toEqual({ received: 7, answered: 3, fallback: 1, failed: 2 });
      expect(await log.counts(now + 1000)).toEqual({ received: 0, answered: 0, fallback: 0, failed: 0 });
    });

    it(`${b.name}: forgetCustomer deletes that customer's rows only`, async () => {
      const log = await open();
      log.record(inbound({ msgid: 'f1', customerId: 'cus_gone' }));
      log.record(outbound({ msgid: 'f2', customerId: 'cus_gone' }));
      log.record(inbound({ msgid: 'f3', customerId: 'cus_stays' }));
      await log.flush();
      expect(await log.forgetCustomer('cus_gone')).toBe(2);
      expect(await msgids(log)).toEqual(['f3']);
      expect(await log.forgetCustomer('cus_gone')).toBe(0);
      // A settlement for a forgotten inbound row does not bring it back.
      log.settle({ channel: 'kf', account: 'wkAAA', msgid: 'f1' }, { status: 'answered' });
      await log.flush();
      expect(await msgids(log)).toEqual(['f3']);
    });

    it(`${b.name}: LOG_MESSAGE_CONTENT=false stores '' but keeps the length`, async () => {
      const log = await open({ logContent: false });
      log.record(inbound({ msgid: 'secret', content: 'my card 1234 😀' }));
      await log.flush();
      const [row] = (await log.query(page())).items;
      expect(row).toMatchObject({ content: '', length: 14, msgid: 'secret' });
      expect((await log.query(page({ text: '1234' }))).items).toEqual([]);
    });

    it(`${b.name}: rows past MESSAGE_RETENTION_DAYS are gone`, async () => {
      const log = await open({ retentionDays: 1 });
      log.record(inbound({ msgid: 'expired', atMs: Date.now() - 2 * 86_400_000 }));
      log.record(inbound({ msgid: 'fresh', atMs: Date.now() - 3600_000 }));
      await log.flush();
      await h.purge();
      expect(await msgids(log)).toEqual(['fresh']);
      expect((await log.counts(0)).received).toBe(1);
    });

    it(`${b.name}: record and settle never throw, whatever they are given`, async () => {
      const log = await open();
      expect(() => log.record(null as never)).not.toThrow();
      expect(() => log.record({ ...inbound({ msgid: 'odd' }), content: undefined as never, latencyMs: Number.NaN })).not.toThrow();
      expect(() => log.settle({ channel: 'kf', account: 'x', msgid: 'none' }, { status: 'answered' })).not.toThrow();
      await log.flush();
      expect((await log.query(page())).items.map((r) => [r.msgid, r.content, r.length])).toEqual([['odd', '', 0]]);
    });

    if (b.kind !== 'mysql') {
      it(`${b.name}: MESSAGE_LOG_MEMORY_LIMIT keeps the newest rows (inbound and outbound one each)`, async () => {
        const log = await open({ memoryLimit: 5 });
        for (let i = 0; i < 4; i++) {
          log.record(inbound({ msgid: `in${i}` }));
          log.record(outbound({ msgid: `out${i}` }));
        }
        await log.flush();
        expect(await msgids(log)).toEqual(['out3', 'in3', 'out2', 'in2', 'out1']);
        log.settle({ channel: 'kf', account: 'wkAAA', msgid: 'in3' }, { status: 'answered' });
        await log.flush();
        expect((await log.query(page({ status: 'answered' }))).items.map((r) => r.msgid)).toEqual(['in3']);
      });
    }

    if (b.kind !== 'memory') {
      it(`${b.name}: a second process sees the rows, and its settlement written before the row applies`, async () => {
        const log = await open();
        const other = (await h.another()).log;
        other.settle({ channel: 'kf', account: 'wkAAA', msgid: 'cross' }, { status: 'answered', agent: 'x' });
        await other.flush();
        log.record(inbound({ msgid: 'cross' }));
        await log.flush();
        expect((await other.query(page())).items).toMatchObject([{ msgid: 'cross', status: 'answered', agent: 'x' }]);
      });
    }
  });
}
