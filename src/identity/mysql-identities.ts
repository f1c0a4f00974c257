/**
 * Customer identities in MySQL/MariaDB (`customers`, `identities`; migrations/001_init.sql). A new customer is
 * created in a transaction whose identity insert loses to a concurrent one on the unique (channel, account,
 * external_id) key: the loser rolls back its customer and takes the winner's id, so two processes agree.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { MysqlDb } from '../log/mysql-db.js';
import { WIDTH } from '../log/mysql-sink.js';
import { cut } from '../log/row.js';
import { newCustomerId } from './customer-id.js';
import { clampCustomerLimit, customerRecord } from './find.js';
import type { CustomerRecord, Identity, IdentityStore } from './types.js';

interface CustomerRow extends RowDataPacket {
  id: string;
  nickname: string | null;
  first_seen: Date;
  last_seen: Date;
}
interface IdentityRow extends RowDataPacket {
  customer_id: string;
  channel: Identity['channel'];
  account: string;
  external_id: string;
}

/** The identity as its columns hold it. */
const columns = (i: Identity): [string, string, string] => [cut(i.channel, WIDTH.channel), cut(i.account, WIDTH.account), cut(i.externalId, WIDTH.external)];
/** `nickname` is VARCHAR(191). */
const NICKNAME_CHARS = 191;

class LostRace extends Error {}

/**
 * Creates the store on a connection (mysql-db.ts) it does not own.
 * Methods throw the driver's error while MySQL cannot answer.
 */
export function createMysqlIdentities(db: MysqlDb): IdentityStore {
  const lookup = async (i: Identity): Promise<string | null> => {
    const rows = await db.run<RowDataPacket[]>('SELECT customer_id FROM identities WHERE channel = ? AND account = ? AND external_id = ?', columns(i));
    return rows[0] ? String(rows[0].customer_id) : null;
  };
  const records = async (customers: CustomerRow[]): Promise<CustomerRecord[]> => {
    if (customers.length === 0) return [];
    const ids = customers.map((c) => c.id);
    const idRows = await db.run<IdentityRow[]>(
      `SELECT customer_id, channel, account, external_id FROM identities WHERE customer_id IN (${ids.map(() => '?').join(', ')}) ORDER BY id`,
      ids,
    );
    return customers.map((c) =>
      customerRecord(
        c.id,
        idRows.filter((r) => r.customer_id === c.id).map((r) => ({ channel: r.channel, account: r.account, externalId: r.external_id })),
        c.nickname,
        c.first_seen.getTime(),
        c.last_seen.getTime(),
      ),
    );
  };

  return {
    kind: 'mysql',
    async resolve(identity) {
      const now = new Date();
      const known = await lookup(identity);
      if (known !== null) {
        await db.run('UPDATE customers SET last_seen = ? WHERE id = ?', [now, known]);
        return known;
      }
      const id = newCustomerId();
      try {
        return await db.transaction(async (conn) => {
          await conn.query('INSERT INTO customers (id, nickname, first_seen, last_seen) VALUES (?, NULL, ?, ?)', [id, now, now]);
          // IGNORE: a concurrent first contact that committed first keeps its id (duplicate key → 0 rows).
          const [r] = await conn.query<ResultSetHeader>(
            'INSERT IGNORE INTO identities (channel, account, external_id, customer_id, created_at) VALUES (?, ?, ?, ?, ?)',
            [...columns(identity), id, now],
          );
          if (r.affectedRows !== 1) throw new LostRace();
          return id;
        });
      } catch (e) {
        if (!(e instanceof LostRace)) throw e;
        const winner = await lookup(identity);
        if (winner === null) throw new Error('identity vanished while being created', { cause: e });
        return winner;
      }
    },
    async get(id) {
      const rows = await db.run<CustomerRow[]>('SELECT id, nickname, first_seen, last_seen FROM customers WHERE id = ?', [id]);
      return (await records(rows))[0] ?? null;
    },
    async find(q) {
      const filters: [string, string | undefined][] = [
        ['i.channel = ?', q.channel],
        ['i.account = ?', q.account],
        ['i.external_id = ?', q.externalId],
      ];
      const given = filters.filter((f): f is [string, string] => f[1] !== undefined);
      const cond = given.map((f) => f[0]);
      const params: unknown[] = given.map((f) => f[1]);
      const filter = cond.length > 0 ? `WHERE EXISTS (SELECT 1 FROM identities i WHERE i.customer_id = c.id AND ${cond.join(' AND ')})` : '';
      const rows = await db.run<CustomerRow[]>(
        `SELECT c.id, c.nickname, c.first_seen, c.last_seen FROM customers c ${filter} ORDER BY c.last_seen DESC, c.id LIMIT ?`,
        [...params, clampCustomerLimit(q.limit)],
      );
      return records(rows);
    },
    async identityOf(id) {
      const rows = await db.run<IdentityRow[]>('SELECT customer_id, channel, account, external_id FROM identities WHERE customer_id = ? ORDER BY id LIMIT 1', [id]);
      const r = rows[0];
      return r ? { channel: r.channel, account: r.account, externalId: r.external_id } : null;
    },
    async setNickname(id, nickname) {
      await db.run('UPDATE customers SET nickname = ? WHERE id = ?', [cut(nickname, NICKNAME_CHARS), id]);
    },
    // The foreign key deletes the identities with the customer (ON DELETE CASCADE).
    erase: async (id) => (await db.run<ResultSetHeader>('DELETE FROM customers WHERE id = ?', [id])).affectedRows > 0,
    close: async () => undefined,
  };
}
