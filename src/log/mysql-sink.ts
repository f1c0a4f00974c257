/**
 * Writes the message log's batches to MySQL: rows as one multi-row INSERT, settlements through the `settlements`
 * table. A settlement is upserted there first and then applied to its row, and every batch of inbound rows applies
 * the settlements already waiting for it; whichever of the two comes second finds the other, so a settlement
 * recorded by another process, or before its row reached the table, is never lost. Applying and deleting an
 * applied settlement happen in one transaction holding its row lock, so a newer settlement upserted meanwhile by
 * another process is not deleted unapplied.
 */
import { randomBytes } from 'node:crypto';
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { MysqlDb } from './mysql-db.js';
import { cut, type PreparedRow } from './row.js';
import type { InboundKey } from './types.js';
import type { LogSink, PendingSettle } from './writer.js';

/** Column widths of migrations/001_init.sql: values are cut to fit instead of having a batch refused. */
export const WIDTH = { channel: 16, account: 128, customer: 32, external: 128, msgid: 128, type: 32, status: 16, agent: 64, replyTo: 128, content: 100_000 };

/** An INT UNSIGNED column's value: null stays null, anything else a whole number in range. */
export function uint(v: number | null | undefined): number | null {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  return Math.min(4_294_967_295, Math.max(0, Math.round(v)));
}
/** An INT column's value. */
export function int(v: number | null | undefined): number | null {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  return Math.min(2_147_483_647, Math.max(-2_147_483_648, Math.round(v)));
}

const ROW_COLUMNS =
  'row_key, at, direction, channel, account, customer_id, external_id, msgid, type, content, length, status, agent, latency_ms, input_tokens, output_tokens, reply_to, errcode';

function rowValues(r: PreparedRow): unknown[] {
  return [
    r.rowKey ?? randomBytes(16),
    new Date(r.atMs),
    r.direction === 'out' ? 'out' : 'in',
    cut(r.channel, WIDTH.channel),
    cut(r.account, WIDTH.account),
    cut(r.customerId, WIDTH.customer),
    cut(r.externalId, WIDTH.external),
    cut(r.msgid, WIDTH.msgid),
    cut(r.type, WIDTH.type),
    cut(r.content, WIDTH.content),
    uint(r.length) ?? 0,
    cut(r.status, WIDTH.status),
    r.agent === null ? null : cut(r.agent, WIDTH.agent),
    uint(r.latencyMs),
    uint(r.inputTokens),
    uint(r.outputTokens),
    r.replyTo === null ? null : cut(r.replyTo, WIDTH.replyTo),
    int(r.errcode),
  ];
}

/** (msgid, channel, account) of an inbound key, cut like the columns. */
function keyValues(k: InboundKey): [string, string, string] {
  return [cut(k.msgid, WIDTH.msgid), cut(k.channel, WIDTH.channel), cut(k.account, WIDTH.account)];
}
const keyList = (keys: InboundKey[]) => ({ sql: keys.map(() => '(?, ?, ?)').join(', '), params: keys.flatMap(keyValues) });

const APPLY_SET =
  'SET m.status = s.status, m.agent = IF(s.fields & 1, s.agent, m.agent), m.latency_ms = IF(s.fields & 2, s.latency_ms, m.latency_ms), ' +
  'm.input_tokens = IF(s.fields & 4, s.input_tokens, m.input_tokens), m.output_tokens = IF(s.fields & 8, s.output_tokens, m.output_tokens)';

/** Creates the sink. Statements run through `db` (connects and migrates first; tracks bridge_mysql_up). */
export function createMysqlSink(db: MysqlDb): LogSink {
  const insertRows = async (rows: PreparedRow[]) => {
    // IGNORE: a row whose row_key is already there was written by an attempt whose answer was lost (the server
    // died after committing), so a retried batch adds nothing twice. It also turns a value the server would refuse
    // into a warning and a cut value, so one bad row cannot block the log.
    await db.run<ResultSetHeader>(`INSERT IGNORE INTO messages (${ROW_COLUMNS}) VALUES ?`, [rows.map(rowValues)]);
  };

  const upsertSettlements = async (settles: PendingSettle[]) => {
    const values = settles.map(({ key, change: c }) => {
      const fields = (c.agent !== undefined ? 1 : 0) | (c.latencyMs !== undefined ? 2 : 0) | (c.inputTokens !== undefined ? 4 : 0) | (c.outputTokens !== undefined ? 8 : 0);
      const agent = c.agent === undefined || c.agent === null ? null : cut(c.agent, WIDTH.agent);
      return [...keyValues(key), cut(c.status, WIDTH.status), fields, agent, uint(c.latencyMs), uint(c.inputTokens), uint(c.outputTokens), new Date()];
    });
    // VALUES(col) in ON DUPLICATE KEY UPDATE: MariaDB has no `AS new` row alias; MySQL 8 still accepts VALUES()
    // (deprecated since 8.0.20, with a warning). `fields` is assigned last: the IFs above read the new row's bits.
    await db.run(
      'INSERT INTO settlements (msgid, channel, account, status, fields, agent, latency_ms, input_tokens, output_tokens, at) VALUES ? ' +
        'ON DUPLICATE KEY UPDATE status = VALUES(status), agent = IF(VALUES(fields) & 1, VALUES(agent), agent), ' +
        'latency_ms = IF(VALUES(fields) & 2, VALUES(latency_ms), latency_ms), input_tokens = IF(VALUES(fields) & 4, VALUES(input_tokens), input_tokens), ' +
        'output_tokens = IF(VALUES(fields) & 8, VALUES(output_tokens), output_tokens), at = VALUES(at), fields = fields | VALUES(fields)',
      [values],
    );
  };

  /** Applies waiting settlements of these keys to their rows and deletes the applied ones. */
  const applyWaiting = async (keys: InboundKey[], lookFirst: boolean) => {
    const list = keyList(keys);
    if (lookFirst) {
      // Most inbound rows have no settlement waiting: one plain read instead of a transaction with locks.
      const found = await db.run<RowDataPacket[]>(`SELECT 1 FROM settlements WHERE (msgid, channel, account) IN (${list.sql}) LIMIT 1`, list.params);
      if (found.length === 0) return;
    }
    await db.transaction(async (conn: PoolConnection) => {
      const [locked] = await conn.query<RowDataPacket[]>(`SELECT msgid FROM settlements WHERE (msgid, channel, account) IN (${list.sql}) FOR UPDATE`, list.params);
      if (locked.length === 0) return;
      await conn.query(
        `UPDATE messages m JOIN settlements s ON m.msgid = s.msgid AND m.channel = s.channel AND m.account = s.account ${APPLY_SET} ` +
          `WHERE m.direction = 'in' AND (s.msgid, s.channel, s.account) IN (${list.sql})`,
        list.params,
      );
      await conn.query(
        `DELETE FROM settlements WHERE (msgid, channel, account) IN (${list.sql}) AND EXISTS (SELECT 1 FROM messages m ` +
          `WHERE m.direction = 'in' AND m.msgid = settlements.msgid AND m.channel = settlements.channel AND m.account = settlements.account)`,
        list.params,
      );
    });
  };

  return {
    async write(rows, settles) {
      if (rows.length > 0) {
        await insertRows(rows);
        const inbound = rows.filter((r) => r.direction === 'in');
        if (inbound.length > 0) await applyWaiting(inbound, true);
      }
      if (settles.length > 0) {
        await upsertSettlements(settles);
        await applyWaiting(settles.map((s) => s.key), false);
      }
    },
  };
}
