import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { freePort } from '../setup/services.js';

/** Whether this run can start a Redis of its own (redis-server on PATH). */
export const canStartRedis: boolean = inject('redisServer');

/** A redis-server owned by one test file: its databases may be flushed, nobody else uses it. */
export interface PrivateRedis {
  /** `redis://127.0.0.1:<port>/<db>` */
  urlFor(db: number): string;
  /** Empties database `db` of this server (never a shared one). */
  flush(db: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a throw-away redis-server on a free loopback port (no persistence) for tests whose server processes use
 * the product's fixed key prefix: they cannot share a Redis with other test files, and must not flush one that is
 * not theirs (TEST_REDIS_URL may be a developer's).
 * @throws when redis-server is not on PATH (guard the suite with `canStartRedis`) or does not listen within 5 s
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'bridge-private-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const urlFor = (db: number) => `redis://127.0.0.1:${port}/${db}`;
  for (let i = 0; ; i++) {
    const probe = new Redis(urlFor(0), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // refused until it listens: expected
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      if (i > 100) throw new Error(`private redis-server did not listen on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      probe.disconnect();
    }
  }
  return {
    urlFor,
    flush: async (db) => {
      const r = new Redis(urlFor(db));
      await r.flushdb();
      await r.quit();
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
