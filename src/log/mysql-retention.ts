/**
 * MESSAGE_RETENTION_DAYS for MySQL: deletes expired log rows and failures in chunks of 5,000 (each DELETE a short
 * transaction on the `at` index, so the pipeline's inserts never wait long), and settlements that waited a day for
 * a row that never came.
 */
import type { ResultSetHeader } from 'mysql2/promise';
import type { MysqlDb } from './mysql-db.js';
import { retentionCutoff } from './row.js';

/** Rows per DELETE. */
export const PURGE_CHUNK = 5000;
/** ms an unapplied settlement is kept. */
const ORPHAN_SETTLEMENT_MS = 86_400_000;

/**
 * Deletes what is past retention.
 * @param retentionDays MESSAGE_RETENTION_DAYS
 * @param now epoch ms
 * @returns message rows deleted
 * @throws the driver's error (the caller logs it; the next run tries again)
 */
export async function purgeExpired(db: MysqlDb, retentionDays: number, now: number): Promise<number> {
  const cutoff = new Date(retentionCutoff(retentionDays, now));
  const chunked = async (sql: string, param: Date): Promise<number> => {
    let total = 0;
    for (;;) {
      const r = await db.run<ResultSetHeader>(`${sql} LIMIT ${PURGE_CHUNK}`, [param], 60_000);
      total += r.affectedRows;
      if (r.affectedRows < PURGE_CHUNK) return total;
      // Let the writer's inserts in between chunks.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const rows = await chunked('DELETE FROM messages WHERE at < ?', cutoff);
  await chunked('DELETE FROM failures WHERE at < ?', cutoff);
  await chunked('DELETE FROM settlements WHERE at < ?', new Date(now - ORPHAN_SETTLEMENT_MS));
  return rows;
}
