/**
 * The MySQL/MariaDB connection of the data layer (mysql2 promise pool): connects and migrates on first use, keeps
 * `bridge_mysql_up` in step with what the server answers, and never fails the start. While the server is away a
 * probe retries every few seconds; when it answers, pending migrations run and the writer's next retry gets through.
 */
import { createPool, type Pool, type PoolConnection, type PoolOptions } from 'mysql2/promise';
import type { Logger } from 'pino';
import { maskCredentials } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { loadMigrations, runMigrations } from './migrate.js';

/** Connection-level failures (the server is away or dropped us), as opposed to an SQL error. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN',
]);

/** Whether an error means the server cannot be reached (as opposed to a refused statement). */
export function isConnectionError(e: unknown): boolean {
  const err = e as { code?: string; fatal?: boolean; errno?: number } | null;
  if (!err || typeof err !== 'object') return false;
  return err.fatal === true || CONNECTION_CODES.has(err.code ?? '') || [1053, 1927, 2006, 2013, 4031].includes(err.errno ?? 0);
}

/** The data layer's MySQL access. */
export interface MysqlDb {
  readonly pool: Pool;
  /** Connects and applies pending migrations unless done; one attempt at a time. @throws the attempt's error */
  ready(): Promise<void>;
  /**
   * Runs one statement after `ready()` and returns mysql2's result (rows for SELECT, a ResultSetHeader otherwise).
   * @param timeoutMs the statement's timeout (a server that stops answering must not hang a caller); default 15,000
   * @throws the driver's error
   */
  run<T>(sql: string, params?: unknown[], timeoutMs?: number): Promise<T>;
  /** Runs `work` in a transaction on one connection (committed when it returns, rolled back when it throws). */
  transaction<T>(work: (conn: PoolConnection) => Promise<T>): Promise<T>;
  /** whether the last statement or probe reached the server */
  isUp(): boolean;
  /** Stops the probe and ends the pool. */
  close(): Promise<void>;
}

/** Options of the connection. */
export interface MysqlDbOptions {
  log: Logger;
  metrics: Metrics;
  /** the folder of NNN_*.sql files (migrate.ts defaultMigrationsDir()) */
  migrationsDir: string;
  /** ms between probes (reconnect while down, `SELECT 1` while up); default 5,000 */
  probeEveryMs?: number;
  /** pool size; default 4 */
  connections?: number;
}

/**
 * Parses MYSQL_URL (`mysql://user:pass@host:3306/db`, port 3306 when absent) into pool options.
 * @throws TypeError on a malformed URL
 */
export function poolOptionsFromUrl(url: string, connections = 4): PoolOptions {
  const u = new URL(url);
  return {
    host: decodeURIComponent(u.hostname.replace(/^\[|\]$/g, '')),
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
    // utf8mb4 end to end: emoji and rare CJK are 4-byte characters.
    charset: 'utf8mb4',
    // DATETIME columns hold UTC; mysql2 converts Date values with this offset both ways.
    timezone: 'Z',
    // BIGINT ids as strings (ids are opaque strings in the ports anyway).
    supportBigNumbers: true,
    bigNumberStrings: true,
    connectionLimit: connections,
    connectTimeout: 3000,
    enableKeepAlive: true,
    waitForConnections: true,
    queueLimit: 0,
  };
}

/**
 * Creates the pool (lazily connecting) and starts the probe. Never throws for an unreachable server: the first
 * failure is logged once, naming MYSQL_URL with its credentials masked, the address and the reason.
 */
export function createMysqlDb(url: string, o: MysqlDbOptions): MysqlDb {
  const pool = createPool(poolOptionsFromUrl(url, o.connections));
  const shown = maskCredentials(url);
  let migrated = false;
  let attempt: Promise<void> | null = null;
  let up = false;
  let everUp = false;
  let downLogged = false;
  let closed = false;
  o.metrics.mysqlUp?.set(0);

  const markUp = () => {
    up = true;
    o.metrics.mysqlUp?.set(1);
    if (downLogged) o.log.info({ mysql: shown }, 'MySQL answers again: the message log writes its buffered rows');
    downLogged = false;
    everUp = true;
  };
  const markDown = (e: unknown) => {
    up = false;
    o.metrics.mysqlUp?.set(0);
    if (downLogged || closed) return;
    downLogged = true;
    const reason = e instanceof Error ? e.message || (e as { code?: string }).code || e.name : String(e);
    const what = isConnectionError(e) ? 'is unreachable' : 'cannot be used';
    const line = `MYSQL_URL ${shown} ${what}: ${reason}; message log rows are buffered and retried`;
    if (everUp) o.log.warn({ err: { message: reason } }, line);
    else o.log.error({ err: { message: reason } }, line);
  };

  const connectAndMigrate = async () => {
    const conn = await pool.getConnection();
    try {
      const ran = await runMigrations(conn, loadMigrations(o.migrationsDir));
      if (ran.length > 0) o.log.info({ versions: ran }, 'MySQL migrations applied');
    } finally {
      conn.release();
    }
    migrated = true;
    markUp();
  };
  const ready = (): Promise<void> => {
    if (migrated) return Promise.resolve();
    attempt ??= connectAndMigrate()
      .catch((e: unknown) => {
        markDown(e);
        throw e;
      })
      .finally(() => {
        attempt = null;
      });
    return attempt;
  };
  const track = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      const result = await work();
      if (!up) markUp();
      return result;
    } catch (e) {
      if (isConnectionError(e)) markDown(e);
      throw e;
    }
  };

  const probe = setInterval(() => {
    if (!migrated) ready().catch(() => undefined);
    else track(() => pool.query({ sql: 'SELECT 1', timeout: 3000 })).catch(() => undefined);
  }, o.probeEveryMs ?? 5000);
  probe.unref();
  // The first attempt now: migrations are done by the time the first rows are written, or the outage is logged.
  ready().catch(() => undefined);

  return {
    pool,
    ready,
    async run<T>(sql: string, params: unknown[] = [], timeoutMs = 15_000): Promise<T> {
      await ready();
      return track(async () => (await pool.query({ sql, timeout: timeoutMs }, params))[0] as T);
    },
    async transaction<T>(work: (conn: PoolConnection) => Promise<T>): Promise<T> {
      await ready();
      return track(async () => {
        const conn = await pool.getConnection();
        try {
          await conn.beginTransaction();
          const result = await work(conn);
          await conn.commit();
          return result;
        } catch (e) {
          await conn.rollback().catch(() => undefined);
          throw e;
        } finally {
          conn.release();
        }
      });
    },
    isUp: () => up,
    async close() {
      closed = true;
      clearInterval(probe);
      await attempt?.catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}
