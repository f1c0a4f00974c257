import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** a real Redis for this run, or '' when none is available (Redis-backed tests then report as skipped) */
    redisUrl: string;
    /** whether `redis-server` is on PATH (tests that need a Redis of their own start one) */
    redisServer: boolean;
  }
}

/**
 * Provides a real Redis to the test files: the server named by TEST_REDIS_URL when set (test files use key
 * prefixes of their own there and never flush it), else a throw-away redis-server on a free loopback port when the
 * binary is on PATH. Never REDIS_URL (a user's deployment: not ours to write to), never the distribution's 6379.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
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
