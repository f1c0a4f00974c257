/**
 * The message log in this process's memory (no MYSQL_URL, no REDIS_URL): the newest MESSAGE_LOG_MEMORY_LIMIT rows,
 * lost on restart. Writes are synchronous array pushes, so there is no buffer and nothing to retry.
 */
import {
  applySettlement,
  clampLimit,
  inboundKeyOf,
  matchesQuery,
  mergeSettlements,
  prepareRow,
  retentionCutoff,
  toLogRow,
  type PreparedRow,
} from './row.js';
import type { InboundSettlement, LogCounts, LogRow, MessageLog } from './types.js';

/** Options of the memory log. */
export interface MemoryLogOptions {
  /** MESSAGE_LOG_MEMORY_LIMIT: rows kept (the oldest go first) */
  limit: number;
  /** LOG_MESSAGE_CONTENT */
  logContent: boolean;
  /** MESSAGE_RETENTION_DAYS: older rows are dropped on write and hidden from queries */
  retentionDays: number;
  /** clock, epoch ms (tests) */
  now?: () => number;
}

interface Entry {
  id: number;
  r: PreparedRow;
}

/** Creates the memory log. Never throws. */
export function createMemoryLog(o: MemoryLogOptions): MessageLog {
  const now = o.now ?? Date.now;
  let rows: Entry[] = [];
  let head = 0;
  let seq = 0;
  const byKey = new Map<string, Entry>();
  // Settlements that came before their row; capped like the rows so a stream of orphans cannot grow without end.
  const early = new Map<string, InboundSettlement>();

  const unindex = (e: Entry) => {
    if (e.r.direction !== 'in') return;
    const k = inboundKeyOf(e.r);
    if (byKey.get(k) === e) byKey.delete(k);
  };
  const trim = () => {
    const cutoff = retentionCutoff(o.retentionDays, now());
    while (rows.length - head > o.limit || (head < rows.length && rows[head]!.r.atMs < cutoff)) unindex(rows[head++]!);
    if (head > 1024 && head * 2 > rows.length) {
      rows = rows.slice(head);
      head = 0;
    }
  };
  const live = function* (): Generator<Entry> {
    const cutoff = retentionCutoff(o.retentionDays, now());
    for (let i = rows.length - 1; i >= head; i--) if (rows[i]!.r.atMs >= cutoff) yield rows[i]!;
  };

  return {
    kind: 'memory',
    record(row) {
      try {
        const r = prepareRow(row, o.logContent, now());
        const e: Entry = { id: ++seq, r };
        if (r.direction === 'in') {
          const k = inboundKeyOf(r);
          const s = early.get(k);
          if (s) {
            applySettlement(r, s);
            early.delete(k);
          }
          byKey.set(k, e);
        }
        rows.push(e);
        trim();
      } catch {
        // never throws: a malformed row is not worth a reply
      }
    },
    settle(key, change) {
      const k = inboundKeyOf(key);
      const e = byKey.get(k);
      if (e) {
        applySettlement(e.r, change);
        return;
      }
      const before = early.get(k);
      early.delete(k);
      early.set(k, before ? mergeSettlements(before, change) : { ...change });
      if (early.size > o.limit) early.delete(early.keys().next().value!);
    },
    async query(q) {
      const limit = clampLimit(q.limit);
      const before = q.cursor === null ? Infinity : /^\d+$/.test(q.cursor) ? Number(q.cursor) : -1;
      const items: LogRow[] = [];
      let more = false;
      for (const e of live()) {
        if (e.id >= before || !matchesQuery(e.r, q)) continue;
        if (items.length === limit) {
          more = true;
          break;
        }
        items.push(toLogRow(String(e.id), e.r));
      }
      return { items, nextCursor: more ? items[items.length - 1]!.id : null };
    },
    async counts(sinceMs) {
      const c: LogCounts = { received: 0, answered: 0, fallback: 0, failed: 0 };
      for (const e of live()) {
        if (e.r.direction !== 'in' || e.r.atMs < sinceMs) continue;
        c.received++;
        if (e.r.status === 'answered' || e.r.status === 'fallback' || e.r.status === 'failed') c[e.r.status]++;
      }
      return c;
    },
    async forgetCustomer(customerId) {
      const kept: Entry[] = [];
      let n = 0;
      for (let i = head; i < rows.length; i++) {
        const e = rows[i]!;
        if (e.r.customerId === customerId) {
          unindex(e);
          n++;
        } else kept.push(e);
      }
      rows = kept;
      head = 0;
      return n;
    },
    health: () => ({ ok: true, buffered: 0, dropped: 0, lastError: null }),
    flush: async () => undefined,
    close: async () => undefined,
  };
}
