/**
 * The message log in Redis (REDIS_URL without MYSQL_URL), shared by every process: rows in a stream capped at
 * MESSAGE_LOG_MEMORY_LIMIT entries (XADD MAXLEN), the stream entry id being the row id (newest first = highest id).
 * Stream entries cannot change, so how an inbound row ended lives beside it in a hash keyed by
 * channel/account/msgid, capped the same way, and is merged into the row when read; a settlement written before
 * its row therefore applies as soon as the row is there. Writes go through the batched writer (writer.ts).
 */
import type { LogStoreOptions } from './writer-options.js';
import type { RedisClient } from '../store/redis-client.js';
import { dataKeys } from './redis-keys.js';
import { SETTLE_LUA } from './redis-lua.js';
import { createBatchWriter, type LogSink } from './writer.js';
import { clampLimit, inboundKeyOf, matchesQuery, prepareRow, retentionCutoff, toLogRow, type PreparedRow } from './row.js';
import { LogUnavailableError, type InboundSettlement, type LogCounts, type LogRow, type MessageLog } from './types.js';

/**
 * Stream ids carry the Redis server's clock at XADD, rows their own `atMs` (normally a little earlier). A time
 * filter reads the stream from `fromMs` minus this much (ms), so clock skew between app and Redis loses no row.
 */
const SKEW_MS = 5 * 60_000;
/** Entries read per XREVRANGE while a query looks for matches. */
const CHUNK = 500;
/** Retention trims the stream at most this often (ms). */
const TRIM_EVERY_MS = 60_000;

/** Options of the Redis log. */
export interface RedisLogOptions extends LogStoreOptions {
  /** MESSAGE_LOG_MEMORY_LIMIT: stream entries kept */
  limit: number;
  now?: () => number;
}

type SettleFn = (stateKey: string, orderKey: string, ...args: (string | number)[]) => Promise<number>;

/**
 * @param redis a connected client, not owned (the caller quits it)
 * @param prefix key prefix (redis-keys.ts)
 */
export function createRedisLog(redis: RedisClient, prefix: string, o: RedisLogOptions): MessageLog {
  const keys = dataKeys(prefix);
  const now = o.now ?? Date.now;
  redis.defineCommand('bridgeLogSettle', { lua: SETTLE_LUA, numberOfKeys: 2 });
  const settleCmd = (redis as unknown as { bridgeLogSettle: SettleFn }).bridgeLogSettle.bind(redis);
  let trimmedAt = 0;

  const sink: LogSink = {
    async write(rows, settles) {
      const t = now();
      const cutoff = retentionCutoff(o.retentionDays, t);
      if (rows.length > 0) {
        // MULTI: all rows or none, so a retried batch duplicates rows only if the answer to a committed EXEC was lost.
        const p = redis.multi();
        for (const r of rows) p.xadd(keys.logStream, 'MAXLEN', o.limit, '*', 'r', JSON.stringify(r));
        if (t - trimmedAt > TRIM_EVERY_MS) p.xtrim(keys.logStream, 'MINID', `${cutoff}-0`);
        const results = (await p.exec()) ?? [];
        for (const [err] of results) if (err) throw err;
        if (t - trimmedAt > TRIM_EVERY_MS) trimmedAt = t;
      }
      if (settles.length > 0) {
        const args: string[] = [];
        for (const s of settles) args.push(inboundKeyOf(s.key), JSON.stringify(s.change));
        await settleCmd(keys.logState, keys.logStateOrder, o.limit, t, cutoff, ...args);
      }
    },
  };
  const writer = createBatchWriter(sink, { log: o.log, metrics: o.metrics, what: 'redis' }, o.writer);

  const unavailable = (e: unknown) =>
    new LogUnavailableError(`the message log (redis) cannot answer: ${e instanceof Error ? e.message : String(e)}`);

  /** Reads newest first from `end` (exclusive when it is a row id) down to `startMs`, merging the state in. */
  async function* scan(end: string | null, startMs: number): AsyncGenerator<{ id: string; r: PreparedRow }> {
    let upper = end === null ? '+' : `(${end}`;
    const lower = `${Math.max(0, Math.floor(startMs))}-0`;
    for (;;) {
      const entries = await redis.xrevrange(keys.logStream, upper, lower, 'COUNT', CHUNK);
      if (entries.length === 0) return;
      const rows = entries.map(([id, fields]) => ({ id, r: JSON.parse(fields[1] ?? '{}') as PreparedRow }));
      const inbound = rows.filter((x) => x.r.direction === 'in');
      if (inbound.length > 0) {
        const states = await redis.hmget(keys.logState, ...inbound.map((x) => inboundKeyOf(x.r)));
        inbound.forEach((x, i) => {
          const s = states[i];
          if (s) Object.assign(x.r, JSON.parse(s) as InboundSettlement);
        });
      }
      for (const x of rows) yield x;
      if (entries.length < CHUNK) return;
      upper = `(${entries[entries.length - 1]![0]}`;
    }
  }

  return {
    kind: 'redis',
    record(row) {
      try {
        writer.record(prepareRow(row, o.logContent, now()));
      } catch {
        // never throws
      }
    },
    settle: (key, change) => writer.settle(key, change),
    async query(q) {
      const limit = clampLimit(q.limit);
      if (q.cursor !== null && !/^\d+-\d+$/.test(q.cursor)) return { items: [], nextCursor: null };
      const cutoff = retentionCutoff(o.retentionDays, now());
      const from = Math.max(cutoff, q.fromMs ?? 0);
      const items: LogRow[] = [];
      let more = false;
      try {
        for await (const x of scan(q.cursor, from - SKEW_MS)) {
          if (x.r.atMs < cutoff || !matchesQuery(x.r, q)) continue;
          if (items.length === limit) {
            more = true;
            break;
          }
          items.push(toLogRow(x.id, x.r));
        }
      } catch (e) {
        throw unavailable(e);
      }
      return { items, nextCursor: more ? items[items.length - 1]!.id : null };
    },
    async counts(sinceMs) {
      const c: LogCounts = { received: 0, answered: 0, fallback: 0, failed: 0 };
      const from = Math.max(sinceMs, retentionCutoff(o.retentionDays, now()));
      try {
        for await (const x of scan(null, from - SKEW_MS)) {
          if (x.r.direction !== 'in' || x.r.atMs < from) continue;
          c.received++;
          if (x.r.status === 'answered' || x.r.status === 'fallback' || x.r.status === 'failed') c[x.r.status]++;
        }
      } catch (e) {
        throw unavailable(e);
      }
      return c;
    },
    async forgetCustomer(customerId) {
      try {
        const ids: string[] = [];
        const states: string[] = [];
        let lower = '-';
        for (;;) {
          const entries = await redis.xrange(keys.logStream, lower, '+', 'COUNT', 1000);
          for (const [id, fields] of entries) {
            const r = JSON.parse(fields[1] ?? '{}') as PreparedRow;
            if (r.customerId !== customerId) continue;
            ids.push(id);
            if (r.direction === 'in') states.push(inboundKeyOf(r));
          }
          if (entries.length < 1000) break;
          lower = `(${entries[entries.length - 1]![0]}`;
        }
        let n = 0;
        for (let i = 0; i < ids.length; i += 500) n += await redis.xdel(keys.logStream, ...ids.slice(i, i + 500));
        for (let i = 0; i < states.length; i += 500) {
          const part = states.slice(i, i + 500);
          await redis.multi().hdel(keys.logState, ...part).zrem(keys.logStateOrder, ...part).exec();
        }
        return n;
      } catch (e) {
        throw unavailable(e);
      }
    },
    health: () => writer.health(),
    flush: () => writer.flush(),
    close: () => writer.close(o.closeGraceMs ?? 5000),
  };
}
