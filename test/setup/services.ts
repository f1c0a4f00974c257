import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createConnection } from 'mysql2/promise';
import type { TestProject } from 'vitest/node';
import { canStartRedisCluster, startRedisCluster } from './redis-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** a real Redis for this run, or '' when none is available (Redis-backed tests then report as skipped) */
    redisUrl: string;
    /** whether `redis-server` is on PATH (tests that need a Redis of their own start one) */
    redisServer: boolean;
    /**
     * a real MariaDB/MySQL server for this run, `mysql://user:pass@127.0.0.1:port/` (no database: test files create
     * their own, test/helpers/mysql.ts), or '' when none is available (MySQL-backed tests then report as skipped)
     */
    mysqlUrl: string;
    /** whether `mariadbd` is on PATH (tests that kill a server start a private one) */
    mariadbServer: boolean;
    /**
     * a real 3-master Redis Cluster for this run, as REDIS_CLUSTER_NODES (`127.0.0.1:p1,…`), or '' when none is
     * available (cluster-backed tests then report as skipped)
     */
    redisClusterNodes: string;
  }
}

/**
 * Provides a real Redis and a real MariaDB/MySQL to the test files (setupRedis, setupMysql below).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stopMysql = await setupMysql(project);
  const stopRedis = await setupRedis(project).catch(async (e: unknown) => {
    await stopMysql();
    throw e;
  });
  const stopCluster = await setupRedisCluster(project).catch(async (e: unknown) => {
    await stopRedis();
    await stopMysql();
    throw e;
  });
  return async () => {
    await stopCluster();
    await stopRedis();
    await stopMysql();
  };
}

/**
 * Provides a real MariaDB/MySQL: TEST_MYSQL_URL when set (test files create and drop databases of their own there),
 * else a throw-away mariadbd on a free loopback port with a temp datadir when the binary is on PATH. Never
 * MYSQL_URL (a user's deployment), never the distribution's 3306.
 */
async function setupMysql(project: TestProject): Promise<() => Promise<void>> {
  // `command -v`, not `mariadb-install-db --version`: the latter runs the installer on the default datadir.
  const hasServer = ['mariadbd', 'mariadb-install-db'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);
  project.provide('mariadbServer', hasServer);
  const given = process.env.TEST_MYSQL_URL?.trim() ?? '';
  if (given || !hasServer) {
    if (!given) console.warn('\n[tests] no mariadbd on PATH and no TEST_MYSQL_URL: MySQL-backed tests will be skipped.\n');
    project.provide('mysqlUrl', given);
    return async () => undefined;
  }
  const server: MariadbServer = await startMariadb();
  // A user with a password, as a deployment has one (and so the masking of credentials is exercised).
  const password = randomBytes(12).toString('hex');
  await server.rootQuery(`CREATE USER 'bridge_test'@'127.0.0.1' IDENTIFIED BY '${password}'`);
  await server.rootQuery("GRANT ALL PRIVILEGES ON *.* TO 'bridge_test'@'127.0.0.1'");
  project.provide('mysqlUrl', `mysql://bridge_test:${password}@127.0.0.1:${server.port}/`);
  return () => server.stop();
}

/**
 * Provides a real Redis: the server named by TEST_REDIS_URL when set (test files use key prefixes of their own
 * there and never flush it), else a throw-away redis-server on a free loopback port when the binary is on PATH.
 * Never REDIS_URL (a user's deployment: not ours to write to), never the distribution's 6379.
 */
async function setupRedis(project: TestProject): Promise<() => Promise<void>> {
  const hasServer = spawnSync('redis-server', ['--version']).status === 0;
  project.provide('redisServer', hasServer);
  const given = process.env.TEST_REDIS_URL?.trim() ?? '';
  if (given || !hasServer) {
    if (!given) console.warn('\n[tests] no redis-server on PATH and no TEST_REDIS_URL: Redis-backed tests will be skipped.\n');
    project.provide('redisUrl', given);
    return async () => undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bridge-test-redis-'));
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  await waitForPort(port, 5000);
  project.provide('redisUrl', `redis://127.0.0.1:${port}`);
  return async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * Provides a real Redis Cluster (3 masters): TEST_REDIS_CLUSTER_NODES when set (tests use key prefixes of their own
 * there), else one started from redis-server + redis-cli when both are on PATH (test/setup/redis-cluster.ts).
 */
async function setupRedisCluster(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.TEST_REDIS_CLUSTER_NODES?.trim() ?? '';
  if (given || !canStartRedisCluster()) {
    if (!given) console.warn('\n[tests] no redis-server/redis-cli on PATH and no TEST_REDIS_CLUSTER_NODES: cluster-backed tests will be skipped.\n');
    project.provide('redisClusterNodes', given);
    return async () => undefined;
  }
  const cluster = await startRedisCluster();
  project.provide('redisClusterNodes', cluster.nodes);
  return () => cluster.stop();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A mariadbd started by the tests (global setup, or a test file that kills it). */
export interface MariadbServer {
  port: number;
  /** `mysql://root@127.0.0.1:<port>/`: root without a password, from the loopback address only */
  rootUrl: string;
  /** Runs one statement as root (setup, assertions). */
  rootQuery(sql: string): Promise<unknown>;
  /** kill -9: no shutdown, InnoDB recovers on the next start */
  kill9(): Promise<void>;
  /** Starts it again on the same port and datadir (after kill9). */
  restart(): Promise<void>;
  /** Stops it (SIGTERM, waits for the exit) and deletes its datadir. */
  stop(): Promise<void>;
}

/**
 * Starts a throw-away MariaDB as docs/development.md ("Tests") describes: `mariadb-install-db` into a temp datadir, then
 * `mariadbd --no-defaults` on a loopback port (the distribution's config, port and socket stay out of the way).
 * @param opts.port a port (default: a free one); opts.args extra server options
 * @throws when the binaries are missing or the server does not answer within 30 s
 */
export async function startMariadb(opts: { port?: number; args?: string[] } = {}): Promise<MariadbServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bridge-mariadb-'));
  const user = userInfo().username;
  await run('mariadb-install-db', ['--no-defaults', `--user=${user}`, `--datadir=${join(dir, 'db')}`, '--auth-root-authentication-method=normal', '--skip-test-db']);
  const port = opts.port ?? (await freePort());
  const args = [
    '--no-defaults', `--user=${user}`, `--datadir=${join(dir, 'db')}`, `--socket=${join(dir, 'db.sock')}`, `--port=${port}`,
    '--bind-address=127.0.0.1', `--pid-file=${join(dir, 'db.pid')}`, `--log-error=${join(dir, 'db.err')}`, '--skip-log-bin',
    '--skip-name-resolve', '--innodb-buffer-pool-size=64M', ...(opts.args ?? []),
  ];
  let child = spawn('mariadbd', args, { stdio: 'ignore' });
  let exited = new Promise<void>((r) => child.once('exit', () => r()));
  const rootUrl = `mysql://root@127.0.0.1:${port}/`;
  const rootQuery = async (sql: string) => {
    const c = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 2000 });
    try {
      return (await c.query(sql))[0];
    } finally {
      await c.end();
    }
  };
  const waitReady = async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await rootQuery('SELECT 1');
        return;
      } catch (e) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`mariadbd on ${port} did not answer (${(e as Error).message}); see ${dir}/db.err`, { cause: e });
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stopChild = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    await waitReady();
  } catch (e) {
    // Leave the datadir (its db.err says why), not the process.
    await stopChild('SIGKILL');
    throw e;
  }
  return {
    port,
    rootUrl,
    rootQuery,
    kill9: () => stopChild('SIGKILL'),
    async restart() {
      child = spawn('mariadbd', args, { stdio: 'ignore' });
      exited = new Promise<void>((r) => child.once('exit', () => r()));
      await waitReady();
    },
    async stop() {
      await stopChild('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err.slice(-500)}`))));
  });
}
