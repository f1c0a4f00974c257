import { describe, expect, it } from 'vitest';
import { prepareRow, type PreparedRow } from '../../src/log/row.js';
import { createBatchWriter, type LogSink, type PendingSettle } from '../../src/log/writer.js';
import { createMetrics } from '../../src/metrics.js';
import { captureLog, inbound, logWrites } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A sink that keeps what it was given and fails while `down` is set (the writer's logic, without a server). */
function recordingSink() {
  const writes: { rows: PreparedRow[]; settles: PendingSettle[]; at: number }[] = [];
  const state = { down: false, attempts: 0 };
  const sink: LogSink = {
    async write(rows, settles) {
      state.attempts++;
      await sleep(1);
      if (state.down) throw new Error('store down');
      writes.push({ rows: rows.map((r) => ({ ...r })), settles: settles.map((s) => ({ ...s })), at: Date.now() });
    },
  };
  return { sink, writes, state };
}

const row = (msgid: string, content = 'x') => prepareRow(inbound({ msgid, content }), true, Date.now());

describe('message log writer (batches, buffer, backoff)', () => {
  it('writes in batches of at most batchSize rows and batchChars characters, in order', async () => {
    const { sink, writes } = recordingSink();
    const w = createBatchWriter(sink, { log: captureLog().log, metrics: createMetrics({ defaultMetrics: false }), what: 'test' }, { batchSize: 500, batchChars: 1000, delayMs: 5 });
    for (let i = 0; i < 1200; i++) w.record(row(`r${i}`));
    w.record(row('big1', 'y'.repeat(800)));
    w.record(row('big2', 'y'.repeat(800)));
    await w.flush();
    const sizes = writes.map((b) => b.rows.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(500);
    expect(writes.flatMap((b) => b.rows.map((r) => r.msgid))).toEqual([...Array.from({ length: 1200 }, (_, i) => `r${i}`), 'big1', 'big2']);
    for (const b of writes) expect(b.rows.reduce((n, r) => n + r.content.length, 0) <= 1000 || b.rows.length === 1).toBe(true);
  });

  it('a settlement merges into its queued row; one for a row in flight is written after it', async () => {
    const { sink, writes } = recordingSink();
    const w = createBatchWriter(sink, { log: captureLog().log, metrics: createMetrics({ defaultMetrics: false }), what: 'test' }, { delayMs: 5 });
    w.record(row('a'));
    w.settle({ channel: 'kf', account: 'wkAAA', msgid: 'a' }, { status: 'answered', agent: 'x' });
    await w.flush();
    expect(writes[0]!.rows[0]).toMatchObject({ msgid: 'a', status: 'answered', agent: 'x' });
    expect(writes[0]!.settles).toEqual([]);
    w.record(row('b'));
    const flushing = w.flush();
    await sleep(0);
    w.settle({ channel: 'kf', account: 'wkAAA', msgid: 'b' }, { status: 'failed' });
    w.settle({ channel: 'kf', account: 'wkAAA', msgid: 'b' }, { status: 'fallback', latencyMs: 5 });
    await flushing;
    await w.flush();
    const settles = writes.flatMap((b) => b.settles);
    expect(settles).toEqual([{ key: { channel: 'kf', account: 'wkAAA', msgid: 'b' }, change: { status: 'fallback', latencyMs: 5 } }]);
  });

  it('retries with a doubling backoff while the store fails and counts ok / retried rows', async () => {
    const { sink, writes, state } = recordingSink();
    const metrics = createMetrics({ defaultMetrics: false });
    const logs = captureLog();
    const w = createBatchWriter(sink, { log: logs.log, metrics, what: 'test' }, { delayMs: 1, minBackoffMs: 20, maxBackoffMs: 80 });
    w.record(row('ok1'));
    await w.flush();
    state.down = true;
    w.record(row('late1'));
    w.record(row('late2'));
    await sleep(400);
    // 20, 40, 80, 80, … ms apart: about six attempts in 400 ms, not hundreds.
    expect(state.attempts).toBeGreaterThan(3);
    expect(state.attempts).toBeLessThan(12);
    expect(w.health()).toMatchObject({ ok: false, buffered: 2, lastError: 'store down' });
    state.down = false;
    await w.flush();
    expect(writes.flatMap((b) => b.rows.map((r) => r.msgid))).toEqual(['ok1', 'late1', 'late2']);
    expect(await logWrites(metrics, 'ok')).toBe(1);
    expect(await logWrites(metrics, 'retried')).toBe(2);
    expect(w.health()).toEqual({ ok: true, buffered: 0, dropped: 0, lastError: null });
    expect(logs.messages().filter((m) => m.includes('failed; rows wait'))).toHaveLength(1);
    expect(logs.messages().filter((m) => m.includes('takes writes again'))).toHaveLength(1);
  });

  it('close gives up after its grace period: what is left counts as dropped; later rows are dropped too', async () => {
    const { sink, state } = recordingSink();
    const metrics = createMetrics({ defaultMetrics: false });
    const logs = captureLog();
    const w = createBatchWriter(sink, { log: logs.log, metrics, what: 'test' }, { delayMs: 1, minBackoffMs: 10, maxBackoffMs: 20 });
    state.down = true;
    for (let i = 0; i < 3; i++) w.record(row(`c${i}`));
    const started = Date.now();
    await w.close(150);
    expect(Date.now() - started).toBeLessThan(1000);
    w.record(row('after'));
    expect(await logWrites(metrics, 'dropped')).toBe(4);
    expect(logs.messages().some((m) => m.includes('3 rows could not be written'))).toBe(true);
  });
});
