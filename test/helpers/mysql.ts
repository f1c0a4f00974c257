import { randomBytes } from 'node:crypto';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { inject } from 'vitest';
import { startMariadb, type MariadbServer } from '../setup/services.js';

/** The server URL provided by test/setup/services.ts (`mysql://user:pass@127.0.0.1:port/`), or '' without one. */
export const mysqlUrl: string = inject('mysqlUrl');

/** Whether this run can start a MariaDB of its own (mariadbd on PATH). */
export const canStartMariadb: boolean = inject('mariadbServer');

/** A database owned by one test file. */
export interface TestDatabase {
  /** the server URL with this database as its path: what MYSQL_URL would be */
  url: string;
  name: string;
  /** Runs one statement in this database and returns the rows (assertions only). */
  query<T extends RowDataPacket = RowDataPacket>(sql: string, params?: unknown[]): Promise<T[]>;
  /** DROP DATABASE (afterAll). */
  drop(): Promise<void>;
}

/** `serverUrl` with `path` as its database. */
export function withDatabase(serverUrl: string, name: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function connect(url: string) {
  const u = new URL(url);
  return createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)) || undefined,
    charset: 'utf8mb4',
    timezone: 'Z',
    connectTimeout: 3000,
  });
}

/**
 * Creates an empty database with a unique name (`t_<label>_<hex>`), so test files can share one server (and a
 * developer's TEST_MYSQL_URL is never written outside databases the tests made). Call `drop()` in afterAll.
 * @param serverUrl default: the run's server (mysqlUrl)
 */
export async function createTestDatabase(label: string, serverUrl = mysqlUrl): Promise<TestDatabase> {
  const name = `t_${label.replace(/[^a-z0-9]/gi, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const admin = await connect(serverUrl);
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, name);
  return {
    url,
    name,
    async query<T extends RowDataPacket = RowDataPacket>(sql: string, params: unknown[] = []) {
      const c = await connect(url);
      try {
        return (await c.query<T[]>(sql, params))[0];
      } finally {
        await c.end();
      }
    },
    async drop() {
      const c = await connect(serverUrl);
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * A mariadbd owned by one test file (it may be killed): `url` is MYSQL_URL for its database `bridge`.
 * @throws when mariadbd is not on PATH (guard the suite with `canStartMariadb`)
 */
export async function startPrivateMariadb(opts: { port?: number } = {}): Promise<MariadbServer & { url: string }> {
  const server = await startMariadb({ port: opts.port, args: ['--innodb-flush-log-at-trx-commit=2'] });
  await server.rootQuery('CREATE DATABASE bridge CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci');
  return Object.assign(server, { url: withDatabase(server.rootUrl, 'bridge') });
}
