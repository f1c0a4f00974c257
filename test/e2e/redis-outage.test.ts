import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { freePort } from '../setup/services.js';

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

/** A private redis-server this test may kill and restart on the same port (AOF always, so nothing is lost). */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().includes('PONG')) return child;
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

describe.skipIf(!hasRedisServer)('Redis unreachable (own redis-server, killed and restarted)', () => {
  let h: Harness | undefined;
  let redis: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'bridge-outage-'));
  afterAll(async () => {
    await h?.close().catch(() => undefined);
    redis?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('healthz stays 200, readyz and callbacks answer 503 while it is down; after it returns the message is answered', async () => {
    const port = await freePort();
    redis = await startRedis(port, dir);
    h = await startHarness({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);

    redis.kill('SIGKILL');
    await new Promise((r) => redis?.once('exit', r));
    await sleep(200);
    h.fake.addCustomerText({ open_kfid: 'wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw', external_userid: 'wmOut', content: '还在吗' });
    const during = await h.callback();
    expect({ status: during.status, body: during.body }).toEqual({ status: 503, body: 'temporarily unavailable' });
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${h.url}/readyz`)).status).toBe(503);
    expect(h.fake.calls.filter((c) => c.api === 'sync_msg')).toEqual([]);

    redis = await startRedis(port, dir);
    // WeCom retries the callback; once the client has reconnected it is accepted and answered.
    let after = { status: 0, body: '' };
    for (let i = 0; i < 50 && after.status !== 200; i++) {
      after = await h.callback();
      if (after.status !== 200) await sleep(100);
    }
    expect(after).toMatchObject({ status: 200, body: 'success' });
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
    await h.fake.waitFor(() => h!.fake.sent.length >= 1);
    await sleep(300);
    expect(textsTo(h.fake, 'wmOut')).toEqual(['还在吗']);
  });
});
