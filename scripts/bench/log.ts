/**
 * Message-log write throughput on MariaDB/MySQL for `npm run bench`: rows recorded through `MessageLog.record` as
 * fast as the batched writer drains them (the producer keeps the buffer below its capacity, so nothing is dropped
 * and the figure is the sustained rate, not the rate of filling memory), until `flush` resolves. Target: ≥ 5,000
 * rows/s. The server is BENCH_MYSQL_URL when set (a database `bench_log_<random>` is created there and dropped),
 * else a private mariadbd with the distribution's durability defaults (innodb_flush_log_at_trx_commit=1).
 * Standalone: `npx tsx scripts/bench/log.ts [rows]`.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { createConnection } from 'mysql2/promise';
import { createDataLayer } from '../../src/log/create.js';
import type { NewLogRow } from '../../src/log/types.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { startMariadb, type MariadbServer } from '../../test/setup/services.js';

/** One measurement. */
export interface LogBenchResult {
  /** `MariaDB 10.11.x` or what VERSION() says */
  server: string;
  rows: number;
  /** wall time from the first record to flush resolving, s */
  seconds: number;
  rowsPerSecond: number;
  /** rows the writer dropped (0 expected: the producer never overfills the buffer) */
  dropped: number;
}

/** Target of docs/configuration.md: the log keeps up with this many rows/s. */
export const LOG_TARGET_ROWS_PER_S = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sampleRow(i: number): NewLogRow {
  const inbound = i % 2 === 0;
  return {
    direction: inbound ? 'in' : 'out',
    channel: i % 3 === 0 ? 'mp' : 'kf',
    account: i % 3 === 0 ? 'wx0123456789abcdef' : 'wkAbCdEfGhIjKlMnOp',
    customerId: `cus_bench${String(i % 500).padStart(15, '0')}`,
    externalId: `wmExternalUser${i % 500}`,
    msgid: `bench-${i}-${randomBytes(6).toString('hex')}`,
    type: inbound ? 'text' : 'answer',
    content: inbound ? `你好，我想问一下订单 ${i} 的物流 😀` : `您好！订单 ${i} 已发货，预计两天内送达，请留意快递短信。`,
    status: inbound ? 'pending' : 'sent',
    ...(inbound ? {} : { agent: 'default', latencyMs: 800, inputTokens: 120, outputTokens: 40, replyTo: `bench-${i - 1}` }),
  };
}

/**
 * Measures sustained write throughput.
 * @param opts.rows rows to write (default 100,000); opts.serverUrl a server URL without database (default
 *   BENCH_MYSQL_URL, else a private mariadbd on a free loopback port)
 * @returns null when there is no server to measure against (no BENCH_MYSQL_URL, no mariadbd on PATH)
 */
export async function measureLogWrites(opts: { rows?: number; serverUrl?: string } = {}): Promise<LogBenchResult | null> {
  const rows = opts.rows ?? 100_000;
  let server: MariadbServer | null = null;
  let serverUrl = opts.serverUrl ?? process.env.BENCH_MYSQL_URL ?? '';
  if (!serverUrl) {
    try {
      server = await startMariadb({ args: ['--innodb-buffer-pool-size=256M'] });
    } catch (e) {
      console.error(`message log bench skipped: no BENCH_MYSQL_URL and no mariadbd to start (${(e as Error).message})`);
      return null;
    }
    serverUrl = server.rootUrl;
  }
  const dbName = `bench_log_${randomBytes(4).toString('hex')}`;
  const u = new URL(serverUrl);
  const admin = await createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) });
  try {
    const [[version]] = (await admin.query('SELECT VERSION() AS v')) as unknown as [[{ v: string }]];
    await admin.query(`CREATE DATABASE ${dbName} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    u.pathname = `/${dbName}`;
    const metrics = createMetrics({ defaultMetrics: false, mysql: true });
    const layer = await createDataLayer(
      { mysqlUrl: u.toString(), memoryLimit: 10_000, logContent: true, retentionDays: 180 },
      { redis: null, redisPrefix: 'bench:', log: createLogger('warn'), metrics },
    );
    try {
      const capacity = 10_000;
      const started = process.hrtime.bigint();
      for (let i = 0; i < rows; ) {
        // Keep the buffer under its capacity: a sustained rate, nothing dropped.
        while (i < rows && layer.log.health().buffered < capacity - 1000) layer.log.record(sampleRow(i++));
        await sleep(1);
      }
      await layer.log.flush();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const dropped = layer.log.health().dropped;
      return { server: `MariaDB/MySQL ${version.v}`, rows, seconds, rowsPerSecond: rows / seconds, dropped };
    } finally {
      await layer.close();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName}`).catch(() => undefined);
    await admin.end();
    await server?.stop();
  }
}

/** Prints the figure and the verdict against the target. */
export function reportLogWrites(r: LogBenchResult | null): void {
  if (!r) return;
  const met = r.rowsPerSecond >= LOG_TARGET_ROWS_PER_S;
  console.log(
    `\nmessage log writes (${r.server}, batched INSERTs through record + flush): ${r.rows.toLocaleString('en')} rows in ${r.seconds.toFixed(2)} s = ` +
      `${Math.round(r.rowsPerSecond).toLocaleString('en')} rows/s (target ≥ ${LOG_TARGET_ROWS_PER_S.toLocaleString('en')}: ${met ? 'met' : 'NOT met'})` +
      `${r.dropped > 0 ? `, ${r.dropped} dropped` : ''}`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  reportLogWrites(await measureLogWrites({ rows: process.argv[2] ? Number(process.argv[2]) : undefined }));
}

/**
 * A private MariaDB with an empty database for the server under benchmark (`MYSQL_URL`), or null when neither
 * BENCH_MYSQL_URL is set nor mariadbd is on PATH.
 * @returns the database URL and how to stop what was started
 */
export async function startBenchMariadb(): Promise<{ url: string; stop: () => Promise<void> } | null> {
  let server: MariadbServer | null = null;
  let serverUrl = process.env.BENCH_MYSQL_URL ?? '';
  if (!serverUrl) {
    try {
      server = await startMariadb({ args: ['--innodb-buffer-pool-size=256M'] });
    } catch (e) {
      console.error(`MariaDB figures skipped: no BENCH_MYSQL_URL and no mariadbd to start (${(e as Error).message})`);
      return null;
    }
    serverUrl = server.rootUrl;
  }
  const dbName = `bench_e2e_${randomBytes(4).toString('hex')}`;
  const u = new URL(serverUrl);
  const admin = await createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) });
  await admin.query(`CREATE DATABASE ${dbName} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  u.pathname = `/${dbName}`;
  return {
    url: u.toString(),
    stop: async () => {
      await admin.query(`DROP DATABASE ${dbName}`).catch(() => undefined);
      await admin.end();
      await server?.stop();
    },
  };
}
