/**
 * The message log in MySQL/MariaDB (MYSQL_URL): rows go through the batched writer (writer.ts + mysql-sink.ts);
 * reads are single indexed statements, newest first by id. Rows older than MESSAGE_RETENTION_DAYS are deleted by a
 * daily timer, in chunks so the deletion never holds long locks.
 */
import type { LogStoreOptions } from './writer-options.js';
import { randomBytes } from 'node:crypto';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { MysqlDb } from './mysql-db.js';
import { purgeExpired } from './mysql-retention.js';
import { createMysqlSink } from './mysql-sink.js';
import { clampLimit, prepareRow } from './row.js';
import { LogUnavailableError, type LogCounts, type LogQuery, type LogRow, type MessageLog } from './types.js';
import { createBatchWriter } from './writer.js';

/** The first retention run comes this long after start (ms), then one a day. */
const FIRST_PURGE_AFTER_MS = 60_000;
const DAY_MS = 86_400_000;

/** Options of the MySQL log. */
export type MysqlLogOptions = LogStoreOptions;

/** The MySQL log, with its retention run exposed for tests and operators. */
export interface MysqlMessageLog extends MessageLog {
  /** Deletes rows (and failures, orphan settlements) past retention now. @returns log rows deleted @throws driver errors */
  purgeExpired(): Promise<number>;
}

const SELECT_COLUMNS =
  'id, at, direction, channel, account, customer_id, external_id, msgid, type, content, length, status, agent, latency_ms, input_tokens, output_tokens, reply_to, errcode';

interface MessageRow extends RowDataPacket {
  id: string;
  at: Date;
  direction: 'in' | 'out';
  channel: LogRow['channel'];
  account: string;
  customer_id: string;
  external_id: string;
  msgid: string;
  type: string;
  content: string;
  length: number;
  status: string;
  agent: string | null;
  latency_ms: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  reply_to: string | null;
  errcode: number | null;
}

function fromDb(r: MessageRow): LogRow {
  return {
    id: String(r.id),
    at: r.at.toISOString(),
    direction: r.direction,
    channel: r.channel,
    account: r.account,
    customerId: r.customer_id,
    externalId: r.external_id,
    msgid: r.msgid,
    type: r.type,
    content: r.content,
    length: Number(r.length),
    status: r.status,
    agent: r.agent,
    latencyMs: r.latency_ms === null ? null : Number(r.latency_ms),
    inputTokens: r.input_tokens === null ? null : Number(r.input_tokens),
    outputTokens: r.output_tokens === null ? null : Number(r.output_tokens),
    replyTo: r.reply_to,
    errcode: r.errcode === null ? null : Number(r.errcode),
  };
}

/** `LIKE` pattern for "contains", with the wildcards of the text escaped (LIKE's default escape is `\`). */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** WHERE clause and parameters of a query (every filter but the cursor). */
function where(q: LogQuery): { sql: string[]; params: unknown[] } {
  const sql: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    sql.push(clause);
    params.push(value);
  };
  if (q.channel !== undefined) add('channel = ?', q.channel);
  if (q.account !== undefined) add('account = ?', q.account);
  if (q.customerId !== undefined) add('customer_id = ?', q.customerId);
  if (q.direction !== undefined) add('direction = ?', q.direction);
  if (q.status !== undefined) add('status = ?', q.status);
  if (q.fromMs !== undefined) add('at >= ?', new Date(q.fromMs));
  if (q.toMs !== undefined) add('at <= ?', new Date(q.toMs));
  if (q.text !== undefined && q.text !== '') add('content LIKE ?', containsPattern(q.text));
  return { sql, params };
}

/** Creates the MySQL log on a connection (mysql-db.ts) it does not own. */
export function createMysqlLog(db: MysqlDb, o: MysqlLogOptions): MysqlMessageLog {
  const writer = createBatchWriter(createMysqlSink(db), { log: o.log, metrics: o.metrics, what: 'mysql' }, o.writer);
  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw new LogUnavailableError(`the message log (mysql) cannot answer: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const purge = () => purgeExpired(db, o.retentionDays, Date.now());
  const runPurge = () => {
    purge().catch((e: unknown) => o.log.warn({ err: { message: e instanceof Error ? e.message : String(e) } }, 'message log retention run failed; next one tomorrow'));
  };
  let daily: NodeJS.Timeout | null = null;
  const first = setTimeout(() => {
    runPurge();
    daily = setInterval(runPurge, DAY_MS);
    daily.unref();
  }, FIRST_PURGE_AFTER_MS);
  first.unref();

  return {
    kind: 'mysql',
    record(row) {
      try {
        writer.record({ ...prepareRow(row, o.logContent, Date.now()), rowKey: randomBytes(16) });
      } catch {
        // never throws
      }
    },
    settle: (key, change) => writer.settle(key, change),
    query: (q) =>
      guard(async () => {
        const limit = clampLimit(q.limit);
        if (q.cursor !== null && !/^\d{1,19}$/.test(q.cursor)) return { items: [], nextCursor: null };
        const w = where(q);
        if (q.cursor !== null) {
          w.sql.push('id < ?');
          w.params.push(q.cursor);
        }
        const rows = await db.run<MessageRow[]>(
          `SELECT ${SELECT_COLUMNS} FROM messages ${w.sql.length > 0 ? `WHERE ${w.sql.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
          [...w.params, limit + 1],
          10_000,
        );
        const items = rows.slice(0, limit).map(fromDb);
        return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null };
      }),
    counts: (sinceMs) =>
      guard(async () => {
        const rows = await db.run<(RowDataPacket & { status: string; n: number })[]>(
          "SELECT status, COUNT(*) AS n FROM messages WHERE direction = 'in' AND at >= ? GROUP BY status",
          [new Date(sinceMs)],
          10_000,
        );
        const c: LogCounts = { received: 0, answered: 0, fallback: 0, failed: 0 };
        for (const r of rows) {
          const n = Number(r.n);
          c.received += n;
          if (r.status === 'answered' || r.status === 'fallback' || r.status === 'failed') c[r.status] += n;
        }
        return c;
      }),
    forgetCustomer: (customerId) =>
      guard(async () => {
        if (!db.isUp()) throw new Error('MySQL is not reachable');
        // Rows still in the buffer would come back after the erasure: write them first (bounded: an outage that
        // starts now must not hang the operator's request).
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([writer.flush(), new Promise<void>((r) => (timer = setTimeout(r, 10_000)))]);
        clearTimeout(timer);
        let total = 0;
        for (;;) {
          const r = await db.run<ResultSetHeader>('DELETE FROM messages WHERE customer_id = ? LIMIT 5000', [customerId]);
          total += r.affectedRows;
          if (r.affectedRows < 5000) return total;
        }
      }),
    health: () => {
      const h = writer.health();
      return db.isUp() ? h : { ...h, ok: false, lastError: h.lastError ?? 'MySQL is not reachable' };
    },
    flush: () => writer.flush(),
    async close() {
      clearTimeout(first);
      if (daily) clearInterval(daily);
      await writer.close(o.closeGraceMs ?? 5000);
    },
    purgeExpired: purge,
  };
}
