/**
 * The recorder writes each customer's rows in the order the pipeline reported them, with the time of the report,
 * even when resolving the customer's id takes longer the first time (a new customer's insert) than after.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createMemoryIdentities } from '../../src/identity/memory-identities.js';
import type { IdentityStore } from '../../src/identity/types.js';
import { createMemoryFailures } from '../../src/log/memory-failures.js';
import { createMemoryLog } from '../../src/log/memory-log.js';
import { createRecorder, type MessagePlace } from '../../src/pipeline/recorder.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The memory identity store, with the first resolve of each identity 150 ms slow (as a MySQL insert can be). */
function slowFirstResolve(): IdentityStore {
  const inner = createMemoryIdentities();
  const seen = new Set<string>();
  return {
    ...inner,
    resolve: async (identity) => {
      const key = `${identity.channel}/${identity.account}/${identity.externalId}`;
      if (!seen.has(key)) {
        seen.add(key);
        await sleep(150);
      }
      return inner.resolve(identity);
    },
  };
}

describe('message recorder', () => {
  it('keeps a customer’s rows in the order reported, stamped with the time of the report', async () => {
    const log = createMemoryLog({ limit: 100, logContent: true, retentionDays: 30 });
    const recorder = createRecorder({
      log,
      failures: createMemoryFailures({ limit: 100 }),
      identities: slowFirstResolve(),
      identityAccount: (p) => p.account,
      logger: pino({ level: 'silent' }),
    });
    const place: MessagePlace = { channel: 'kf', account: 'wkA', externalId: 'wmOrder' };
    const other: MessagePlace = { channel: 'kf', account: 'wkA', externalId: 'wmOther' };
    const before = Date.now();
    recorder.inbound({ ...place, msgid: 'm1', type: 'text', content: 'q1' });
    recorder.outbound({ ...place, partId: 'p1', kind: 'answer', content: 'a1', status: 'sent', replyTo: 'm1' });
    recorder.inbound({ ...other, msgid: 'o1', type: 'text', content: 'other' });
    recorder.inbound({ ...place, msgid: 'm2', type: 'text', content: 'q2' });
    recorder.outbound({ ...place, partId: 'p2', kind: 'command', content: 'a2', status: 'sent', replyTo: 'm2' });
    await recorder.idle();
    await log.flush();

    const { items } = await log.query({ limit: 50, cursor: null });
    const mine = items.filter((r) => r.externalId === 'wmOrder').reverse();
    expect(mine.map((r) => r.msgid)).toEqual(['m1', 'p1', 'm2', 'p2']);
    expect(new Set(mine.map((r) => r.customerId)).size).toBe(1);
    // Stamped when reported, not when written after the 150 ms resolve.
    for (const r of mine) expect(Date.parse(r.at) - before).toBeLessThan(100);
    // Another customer is not held behind this one's chain.
    expect(items.some((r) => r.msgid === 'o1')).toBe(true);
  });
});
