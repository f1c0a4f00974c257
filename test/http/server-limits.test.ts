/**
 * What one client may hold of the server (docs/configuration.md "Cost of hostile input"): receiving a request's headers and
 * body is limited (15 s by default; shortened here), a body trickled a byte at a time is cut with 408 without
 * reaching a route, a response that takes longer than the limit (an OA passive hold) is not cut, and at least
 * 10,000 connections are accepted at once while callbacks keep being answered.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVER_LIMITS } from '../../src/app.js';
import { buildMpPush, textMsg } from '../fakes/wechat-mp-push.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { sleep, startHarness, type Harness } from '../helpers/harness.js';
import { MP, MP_PATH, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';

const SHORT = { requestTimeoutMs: 1500, checkIntervalMs: 250 };

/** Opens a raw connection, runs `drive`, and resolves with what the server wrote and when it closed (ms). */
function rawConnection(url: string, drive: (s: net.Socket) => void): Promise<{ data: string; closedAfterMs: number }> {
  const { port } = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => drive(s));
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString('utf8')));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ data, closedAfterMs: performance.now() - started }));
  });
}

/** Writes `unit` every `everyMs` until the socket closes. */
function trickle(s: net.Socket, unit: string, everyMs: number): void {
  const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write(unit)), everyMs);
  s.on('close', () => clearInterval(t));
}

describe('request limits', () => {
  let h: Harness | undefined;
  let m: MpHarness | undefined;
  let llm: FakeOpenAI | undefined;
  afterEach(async () => {
    await Promise.all([h?.close(), m?.close(), llm?.close()]);
    h = m = llm = undefined;
  });

  it('defaults: 15 s to receive a request, keep-alive 65 s, at least 10,000 connections', async () => {
    expect(SERVER_LIMITS).toMatchObject({ requestTimeoutMs: 15_000, keepAliveTimeoutMs: 65_000 });
    expect(SERVER_LIMITS.maxConnections).toBeGreaterThanOrEqual(10_000);
    expect(SERVER_LIMITS.checkIntervalMs).toBeLessThanOrEqual(2_000);
    h = await startHarness();
    expect({ request: h.app.server.requestTimeout, headers: h.app.server.headersTimeout, max: h.app.server.maxConnections }).toEqual({
      request: 15_000,
      headers: 15_000,
      max: SERVER_LIMITS.maxConnections,
    });
  });

  it('a body trickled a byte at a time is cut with 408 at the limit; the route never runs (no pull)', async () => {
    h = await startHarness({ appOverrides: { limits: SHORT } });
    const head = `POST /wecom/kf/callback?msg_signature=x&timestamp=1&nonce=1 HTTP/1.1\r\nHost: a\r\nContent-Type: text/xml\r\nContent-Length: 600\r\n\r\n`;
    const r = await rawConnection(h.url, (s) => {
      s.write(head);
      trickle(s, '<', 200);
    });
    expect(r.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.closedAfterMs).toBeGreaterThan(SHORT.requestTimeoutMs - 100);
    expect(r.closedAfterMs).toBeLessThan(SHORT.requestTimeoutMs + 4 * SHORT.checkIntervalMs + 500);
    expect(h.fake.calls.filter((c) => c.api === 'sync_msg')).toEqual([]);
  });

  it('headers trickled a line at a time, and a connection that sends nothing, are closed at the limit', async () => {
    h = await startHarness({ appOverrides: { limits: SHORT } });
    const [slowHeaders, silent] = await Promise.all([
      rawConnection(h.url, (s) => {
        s.write('GET /healthz HTTP/1.1\r\nHost: a\r\n');
        trickle(s, 'X-Slow: 1\r\n', 200);
      }),
      rawConnection(h.url, () => undefined),
    ]);
    for (const r of [slowHeaders, silent]) {
      expect(r.closedAfterMs).toBeLessThan(SHORT.requestTimeoutMs + 4 * SHORT.checkIntervalMs + 500);
    }
    expect(slowHeaders.data).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('a response that takes longer than the limit is not cut (an OA passive delivery held 2.5 s)', async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-limits' });
    llm.setDefault({ kind: 'answer', firstByteDelayMs: 5000 });
    m = await startMpHarness({
      appOverrides: { limits: SHORT },
      env: {
        WECHAT_MP_REPLY_MODE: 'passive',
        WECHAT_MP_APP_SECRET: '',
        WECHAT_MP_PASSIVE_HOLD_MS: '2500',
        LLM_PROVIDER: 'openai',
        OPENAI_BASE_URL: llm.baseUrl,
        OPENAI_API_KEY: 'sk-limits',
      },
    });
    const push = buildMpPush(MP, 'safe', textMsg(MP, 'oHeld', '慢'));
    const started = performance.now();
    const res = await fetch(`${m.url}${MP_PATH}?${push.query}`, { method: 'POST', body: push.body });
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 503, body: 'answer not ready' });
    expect(performance.now() - started).toBeGreaterThan(2400);
  });
});

describe('connections', () => {
  let h: Harness | undefined;
  afterEach(async () => h?.close());

  it('10,000 connections open at once: all accepted, and /healthz and a callback are still answered', { timeout: 60_000 }, async () => {
    h = await startHarness();
    const { port } = new URL(h.url);
    // The client side lives in another process: 10,000 sockets on each side would pass one process's fd limit.
    const child = fork(new URL('../helpers/hold-connections.ts', import.meta.url), [port, '10000'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      const opened = await new Promise<number>((resolve, reject) => {
        child.once('message', (msg: { opened: number }) => resolve(msg.opened));
        child.once('exit', (code) => reject(new Error(`connection holder exited (${code})`)));
      });
      expect(opened).toBe(10_000);
      await sleep(200);
      const count = await new Promise<number>((resolve, reject) => h!.app.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
      expect(count).toBeGreaterThanOrEqual(10_000);
      expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
      expect((await h.callback()).body).toBe('success');
    } finally {
      child.kill();
    }
  });
});
