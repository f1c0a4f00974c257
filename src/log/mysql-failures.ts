/**
 * Failed replies in MySQL (`failures`, migrations/001_init.sql). Unlike log rows these are written at once (an
 * operator replays them; they are few), so every method throws LogUnavailableError while MySQL is away.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { MysqlDb } from './mysql-db.js';
import { int, uint, WIDTH } from './mysql-sink.js';
import { clampLimit, cut } from './row.js';
import { LogUnavailableError, type FailedReply, type FailureStore } from './types.js';

interface FailureRow extends RowDataPacket {
  id: string;
  at: Date;
  channel: 'kf' | 'mp';
  account: string;
  customer_id: string;
  external_id: string;
  msgid: string;
  parts: string;
  sent: number;
  part_ids: string;
  errcode: number | null;
  reason: string;
  replays: number;
}

function fromDb(r: FailureRow): FailedReply {
  return {
    id: String(r.id),
    at: r.at.toISOString(),
    channel: r.channel,
    account: r.account,
    customerId: r.customer_id,
    externalId: r.external_id,
    msgid: r.msgid,
    parts: JSON.parse(r.parts) as string[],
    sent: Number(r.sent),
    partIds: JSON.parse(r.part_ids) as string[],
    errcode: r.errcode === null ? null : Number(r.errcode),
    reason: r.reason,
    replays: Number(r.replays),
  };
}

const isId = (id: string | null): id is string => id !== null && /^\d{1,19}$/.test(id);
/** `reason` is TEXT (65,535 bytes): 16,000 characters fit even at 4 bytes each. */
const REASON_CHARS = 16_000;

/** Creates the store on a connection (mysql-db.ts) it does not own. */
export function createMysqlFailures(db: MysqlDb): FailureStore {
  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw new LogUnavailableError(`the failures list (mysql) cannot answer: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const byId = async (id: string) => (await db.run<FailureRow[]>('SELECT * FROM failures WHERE id = ?', [id]))[0] ?? null;

  return {
    add: (f) =>
      guard(async () => {
        // REPLACE: a second failure of the same message (unique channel/account/msgid) takes the place of the first.
        const r = await db.run<ResultSetHeader>(
          'REPLACE INTO failures (at, channel, account, customer_id, external_id, msgid, parts, sent, part_ids, errcode, reason, replays) ' +
            'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)',
          [
            new Date(f.atMs ?? Date.now()),
            f.channel,
            cut(f.account, WIDTH.account),
            cut(f.customerId, WIDTH.customer),
            cut(f.externalId, WIDTH.external),
            cut(f.msgid, WIDTH.msgid),
            JSON.stringify(f.parts),
            uint(f.sent) ?? 0,
            JSON.stringify(f.partIds),
            int(f.errcode),
            cut(f.reason, REASON_CHARS),
          ],
        );
        const row = await byId(String(r.insertId));
        if (!row) throw new Error('the failure just written cannot be read back');
        return fromDb(row);
      }),
    list: (limit, cursor) =>
      guard(async () => {
        const n = clampLimit(limit);
        if (cursor !== null && !isId(cursor)) return { items: [], nextCursor: null };
        const rows = await db.run<FailureRow[]>(
          `SELECT * FROM failures ${cursor === null ? '' : 'WHERE id < ?'} ORDER BY id DESC LIMIT ?`,
          cursor === null ? [n + 1] : [cursor, n + 1],
        );
        const items = rows.slice(0, n).map(fromDb);
        return { items, nextCursor: rows.length > n ? items[items.length - 1]!.id : null };
      }),
    get: (id) =>
      guard(async () => {
        if (!isId(id)) return null;
        const row = await byId(id);
        return row ? fromDb(row) : null;
      }),
    remove: (id) =>
      guard(async () => isId(id) && (await db.run<ResultSetHeader>('DELETE FROM failures WHERE id = ?', [id])).affectedRows > 0),
    update: (id, change) =>
      guard(async () => {
        if (!isId(id)) return;
        await db.run('UPDATE failures SET errcode = ?, reason = ?, sent = ?, replays = replays + 1 WHERE id = ?', [
          int(change.errcode),
          cut(change.reason, REASON_CHARS),
          uint(change.sent) ?? 0,
          id,
        ]);
      }),
    forgetCustomer: (customerId) =>
      guard(async () => (await db.run<ResultSetHeader>('DELETE FROM failures WHERE customer_id = ?', [customerId])).affectedRows),
  };
}
