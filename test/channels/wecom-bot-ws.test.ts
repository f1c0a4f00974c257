/**
 * Smart bot long-connection mode (src/channels/wecom-bot/ws-*.ts) against a fake WeCom endpoint on 127.0.0.1 and a
 * real Redis: connection, refused credentials, callbacks and replies, one connection per bot across processes,
 * takeover after kill -9 (a real child process) and after a graceful stop, eviction by a third party.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BotWsReplyError,
  startBotConnections,
  type BotConnections,
  type BotConnectionsOptions,
  type BotWsCallback,
} from '../../src/channels/wecom-bot/ws-connections.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { keys } from '../../src/store/keys.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/types.js';
import { startFakeWecomBotWs, type FakeWecomBotWs } from '../fakes/wecom-bot-ws.js';
import { connectRedis, redisUrl, uniquePrefix } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SECRETS = { bot1: 'secret-one-7f3a9c', bot2: 'secret-two-b81d44' };

interface Instance {
  conns: BotConnections;
  store: Store;
  /** the store's client (a test may cut it) */
  redis: Redis;
  metrics: Metrics;
  lines: Record<string, unknown>[];
  callbacks: BotWsCallback[];
  stopped: boolean;
  stop(): Promise<void>;
}

let fake: FakeWecomBotWs;
let prefix: string;
const instances: Instance[] = [];
const children: ChildProcess[] = [];
const servers: Server[] = [];
process.once('exit', () => children.forEach((c) => c.kill('SIGKILL'))); // a crashed run leaves no holder behind

async function startInstance(
  holderId: string,
  bots: Array<keyof typeof SECRETS> = ['bot1'],
  extra: Partial<BotConnectionsOptions> = {},
): Promise<Instance> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const redis = await connectRedis();
  const store = createRedisStore(redis, prefix);
  const metrics = createMetrics();
  const callbacks: BotWsCallback[] = [];
  const conns = startBotConnections({
    bots: bots.map((botId) => ({ botId, secret: SECRETS[botId] })),
    wsUrl: fake.url,
    store,
    holderId,
    log: createLogger('trace', sink),
    metrics,
    onCallback: (cb) => void callbacks.push(cb),
    ...extra,
  });
  const inst: Instance = {
    conns,
    store,
    redis,
    metrics,
    lines,
    callbacks,
    stopped: false,
    stop: async () => {
      if (inst.stopped) return;
      inst.stopped = true;
      await conns.stop();
      await store.close();
    },
  };
  instances.push(inst);
  return inst;
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gauge(m: Metrics, bot: string): Promise<number | undefined> {
  return (await m.botWsConnected.get()).values.find((v) => v.labels.bot === bot)?.value;
}

function expectNoSecretLogged(inst: Instance): void {
  const all = JSON.stringify(inst.lines);
  for (const s of Object.values(SECRETS)) expect(all).not.toContain(s);
}

describe.skipIf(!redisUrl)('wecom smart bot long connection (fake WeCom, real Redis)', () => {
  beforeEach(async () => {
    prefix = uniquePrefix('bot-ws');
    fake = await startFakeWecomBotWs({ bots: { ...SECRETS } });
  });

  afterEach(async () => {
    for (const c of children) c.kill('SIGKILL');
    children.length = 0;
    await Promise.all(instances.splice(0).map((i) => i.stop()));
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await fake.close();
  });

  it('connects and subscribes with the bot id and secret; a text callback reaches onCallback and stream frames arrive in order on its req_id', async () => {
    const a = await startInstance('h-a');
    await waitUntil(() => a.conns.isConnected('bot1'), 5_000, 'bot1 connected');
    expect(fake.accepted('bot1')).toBe(1);
    expect(fake.frames.find((f) => f.cmd === 'aibot_subscribe')?.body).toEqual({ bot_id: 'bot1', secret: SECRETS.bot1 });
    expect(await gauge(a.metrics, 'bot1')).toBe(1);
    expect(await a.store.get(keys.botWsLease('bot1'))).toBe('h-a');

    const reqId = fake.pushMessage('bot1', { msgid: 'm-1', text: { content: 'hi there' } });
    await waitUntil(() => a.callbacks.length === 1, 2_000, 'the callback');
    const cb = a.callbacks[0]!;
    expect(cb).toMatchObject({ botId: 'bot1', kind: 'message', reqId, body: { msgid: 'm-1', msgtype: 'text', text: { content: 'hi there' } } });

    // Fired together: the SDK sends one req_id's frames one after another, each after the previous ack.
    const png = randomBytes(64);
    const image = { msgtype: 'image' as const, image: { base64: png.toString('base64'), md5: 'd41d8cd98f00b204e9800998ecf8427e' } };
    await Promise.all([
      cb.replier.stream({ id: 's-1', finish: false, content: '正在思考中…' }),
      cb.replier.stream({ id: 's-1', finish: false, content: 'Hel' }),
      cb.replier.stream({ id: 's-1', finish: true, content: 'Hello', msg_item: [image] }),
    ]);
    const sent = fake.frames.filter((f) => f.cmd === 'aibot_respond_msg' && f.reqId === reqId);
    expect(sent.map((f) => f.body)).toEqual([
      { msgtype: 'stream', stream: { id: 's-1', finish: false, content: '正在思考中…' } },
      { msgtype: 'stream', stream: { id: 's-1', finish: false, content: 'Hel' } },
      { msgtype: 'stream', stream: { id: 's-1', finish: true, content: 'Hello', msg_item: [image] } },
    ]);
    expect(fake.violations).toEqual([]);

    // A frame after finish is refused by WeCom: the promise rejects with its errcode.
    const late = await cb.replier.stream({ id: 's-1', finish: true, content: 'again' }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(BotWsReplyError);
    expect(late).toMatchObject({ reason: 'refused', errcode: 846608, cmd: 'aibot_respond_msg' });

    // After stop this process holds nothing: a reply fails at once, the lease is gone, the gauge is 0.
    await a.stop();
    await expect(cb.replier.stream({ id: 's-2', finish: true, content: 'x' })).rejects.toMatchObject({ reason: 'failed' });
    expect(await gauge(a.metrics, 'bot1')).toBe(0);
    const check = createRedisStore(await connectRedis(), prefix);
    expect(await check.get(keys.botWsLease('bot1'))).toBeNull();
    await check.close();
    expectNoSecretLogged(a);
  });

  it('answers enter_chat with a welcome; sendMarkdown, image upload and reply, and media download work', async () => {
    const a = await startInstance('h-a');
    await waitUntil(() => a.conns.isConnected('bot1'), 5_000, 'bot1 connected');

    const evReq = fake.pushEvent('bot1', 'enter_chat');
    await waitUntil(() => a.callbacks.length === 1, 2_000, 'the event');
    const ev = a.callbacks[0]!;
    expect(ev).toMatchObject({ kind: 'event', reqId: evReq, body: { msgtype: 'event', event: { eventtype: 'enter_chat' } } });
    await ev.replier.welcome('欢迎！');
    expect(fake.frames.find((f) => f.cmd === 'aibot_respond_welcome_msg')).toMatchObject({
      reqId: evReq,
      body: { msgtype: 'text', text: { content: '欢迎！' } },
      errcode: 0,
    });

    await ev.replier.sendMarkdown('user1', '**later**');
    expect(fake.frames.find((f) => f.cmd === 'aibot_send_msg')?.body).toEqual({ chatid: 'user1', msgtype: 'markdown', markdown: { content: '**later**' } });

    const msgReq = fake.pushMessage('bot1');
    await waitUntil(() => a.callbacks.length === 2, 2_000, 'the message');
    const msg = a.callbacks[1]!;
    const mediaId = await msg.replier.uploadImage(randomBytes(700 * 1024), 'chart.png');
    expect(mediaId).toMatch(/^media-/);
    expect(fake.frames.filter((f) => f.cmd.startsWith('aibot_upload_media_')).map((f) => f.cmd)).toEqual([
      'aibot_upload_media_init',
      'aibot_upload_media_chunk',
      'aibot_upload_media_chunk',
      'aibot_upload_media_finish',
    ]);
    await msg.replier.replyImage(mediaId);
    expect(fake.frames.filter((f) => f.cmd === 'aibot_respond_msg' && f.reqId === msgReq).map((f) => f.body)).toEqual([
      { msgtype: 'image', image: { media_id: mediaId } },
    ]);

    // Inbound media: AES-256-CBC with key = base64-decode(aeskey), IV = its first 16 bytes, PKCS#7 to 32 bytes.
    const plain = Buffer.from('the picture bytes');
    const key = randomBytes(32);
    const pad = 32 - (plain.length % 32);
    const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16)).setAutoPadding(false);
    const encrypted = Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]);
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="pic.png"' });
      res.end(encrypted);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/media`;
    expect(await msg.replier.download(url, key.toString('base64'))).toEqual({ data: plain, filename: 'pic.png' });
    expect(fake.violations).toEqual([]);
    expectNoSecretLogged(a);
  });

  it('wrong secret: logs a clear error (errcode, bot, hint), stays unconnected, retries with growing back-off and heals once the secret matches', async () => {
    fake.setSecret('bot1', 'the-console-secret');
    const a = await startInstance('h-a');
    await waitUntil(() => fake.subscribes('bot1') >= 3, 8_000, 'three subscribe attempts').catch((e: unknown) => {
      console.log(JSON.stringify(a.lines.map((l) => [l.time, l.level, l.msg, l.errcode, l.retryInMs, l.why, l.op])), JSON.stringify(fake.frames));
      throw e;
    });
    expect(a.conns.isConnected('bot1')).toBe(false);
    expect(await gauge(a.metrics, 'bot1')).toBe(0);
    const at = fake.frames.filter((f) => f.cmd === 'aibot_subscribe').map((f) => f.at);
    const gaps = [at[1]! - at[0]!, at[2]! - at[1]!];
    expect(gaps[0]).toBeGreaterThanOrEqual(950);
    expect(gaps[1]).toBeGreaterThan(gaps[0]! + 500);

    const errors = a.lines.filter((l) => l.level === 50);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0]).toMatchObject({ bot: 'bot1', errcode: 853000, errmsg: 'invalid bot_id or secret', attempt: 1, retryInMs: 1000 });
    expect(String(errors[0]!.msg)).toContain('check the BotID and Secret of long-connection mode in the WeCom admin console');

    // The admin fixes the console (here: the fake accepts our secret): the next attempt connects.
    fake.setSecret('bot1', SECRETS.bot1);
    await waitUntil(() => a.conns.isConnected('bot1'), 8_000, 'bot1 connected after the fix');
    expect(await gauge(a.metrics, 'bot1')).toBe(1);
    expectNoSecretLogged(a);
  }, 25_000);

  it('two processes on one Redis: exactly one connection per bot, no evictions', async () => {
    const [a, b] = await Promise.all([startInstance('h-a', ['bot1', 'bot2']), startInstance('h-b', ['bot1', 'bot2'])]);
    for (const bot of ['bot1', 'bot2']) {
      await waitUntil(() => a.conns.isConnected(bot) || b.conns.isConnected(bot), 5_000, `${bot} connected`);
    }
    await sleep(3_500); // more than one acquisition period of the other process
    for (const bot of ['bot1', 'bot2']) {
      expect(Number(a.conns.isConnected(bot)) + Number(b.conns.isConnected(bot))).toBe(1);
      expect((await gauge(a.metrics, bot))! + (await gauge(b.metrics, bot))!).toBe(1);
      expect(fake.subscribes(bot)).toBe(1);
      expect(fake.evictions(bot)).toBe(0);
      expect(fake.openConnections(bot)).toBe(1);
    }
  });

  it('kill -9 of the holder (lease left behind): the other process holds and is connected within 20 s', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/channels/wecom-bot-ws-holder.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', REDIS_URL: redisUrl, PREFIX: prefix, WS_URL: fake.url, BOT_ID: 'bot1', SECRET: SECRETS.bot1, HOLDER: 'h-child' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => void (out += d.toString()));
    await waitUntil(() => out.includes('connected'), 15_000, `the child to connect (output: ${out})`);

    const b = await startInstance('h-b');
    await sleep(3_500);
    expect(b.conns.isConnected('bot1')).toBe(false);
    expect(fake.subscribes('bot1')).toBe(1);

    child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await b.store.get(keys.botWsLease('bot1'))).toBe('h-child'); // no release: it lapses by its TTL
    await waitUntil(() => b.conns.isConnected('bot1'), 25_000, 'the takeover');
    const takeoverMs = Date.now() - killedAt;
    console.log(`[bot-ws] takeover after kill -9 of the holder: ${takeoverMs} ms (lease 15000 ms)`);
    expect(takeoverMs).toBeLessThan(20_000);
    expect(takeoverMs).toBeGreaterThan(8_000); // the lease, not a glitch, kept b out until then
    expect(await b.store.get(keys.botWsLease('bot1'))).toBe('h-b');
    expect(fake.openConnections('bot1')).toBe(1);
    expect(fake.evictions('bot1')).toBe(0);
  }, 60_000);

  it('graceful stop releases at once: the other process takes over within ~3 s', async () => {
    const a = await startInstance('h-a');
    await waitUntil(() => a.conns.isConnected('bot1'), 5_000, 'a connected');
    const b = await startInstance('h-b');
    await sleep(500); // b's first attempt (at start) found the lease taken
    expect(b.conns.isConnected('bot1')).toBe(false);

    await a.stop();
    const stoppedAt = Date.now();
    expect(fake.isConnected('bot1')).toBe(false);
    expect([null, 'h-b']).toContain(await b.store.get(keys.botWsLease('bot1')));
    await waitUntil(() => b.conns.isConnected('bot1'), 6_000, 'the takeover');
    const takeoverMs = Date.now() - stoppedAt;
    console.log(`[bot-ws] takeover after a graceful stop: ${takeoverMs} ms`);
    expect(takeoverMs).toBeLessThan(4_000); // bound: one acquisition period (2–3 s) + the connect
    expect(fake.evictions('bot1')).toBe(0);
  });

  it('an eviction by a third party (disconnected_event) rests cluster-wide instead of a reconnect storm', async () => {
    const REST = 1_500;
    const [a, b] = await Promise.all([startInstance('h-a', ['bot1'], { kickRestMs: REST }), startInstance('h-b', ['bot1'], { kickRestMs: REST })]);
    await waitUntil(() => fake.isConnected('bot1'), 5_000, 'bot1 connected');
    const gaps: number[] = [];
    for (let k = 1; k <= 3; k++) {
      const before = fake.subscribes('bot1');
      const kickedAt = Date.now();
      fake.kick('bot1');
      await waitUntil(() => !a.conns.isConnected('bot1') && !b.conns.isConnected('bot1'), 1_000, 'the evicted process to let go');
      await waitUntil(() => fake.isConnected('bot1'), 10_000, `reconnection after kick ${k}`);
      const sub = fake.frames.filter((f) => f.cmd === 'aibot_subscribe').at(-1)!;
      gaps.push(sub.at - kickedAt);
      expect(fake.subscribes('bot1')).toBe(before + 1); // one attempt per eviction, by one process
    }
    console.log(`[bot-ws] reconnect after third-party evictions (rest ${REST} ms, doubling per process): ${gaps.join(', ')} ms`);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(REST - 50);
    expect(fake.evictions('bot1')).toBe(0); // our processes never evicted each other
    const warned = [...a.lines, ...b.lines].filter((l) => l.level === 40 && String(l.msg).includes('disconnected_event') && !l.sdk);
    expect(warned.length).toBe(3);
  }, 40_000);

  it('store unreachable: the holder drops its connection before its last confirmed lease runs out', async () => {
    const LEASE = 3_000;
    const a = await startInstance('h-a', ['bot1'], { leaseMs: LEASE });
    await waitUntil(() => a.conns.isConnected('bot1'), 5_000, 'connected');
    a.redis.disconnect(); // renewals now fail at once (no offline queue)
    const cutAt = Date.now();
    await waitUntil(() => !fake.isConnected('bot1'), LEASE + 1_000, 'the drop');
    const droppedAfterMs = Date.now() - cutAt;
    expect(droppedAfterMs).toBeLessThan(LEASE); // the last renewal was sent before the cut
    expect(a.conns.isConnected('bot1')).toBe(false);
    expect(await gauge(a.metrics, 'bot1')).toBe(0);
    expect(a.lines.some((l) => l.level === 40 && l.why === 'unconfirmed')).toBe(true);
  });

  it('an abruptly dropped socket is reconnected by the SDK in the same process (lease kept)', async () => {
    const a = await startInstance('h-a');
    await waitUntil(() => a.conns.isConnected('bot1'), 5_000, 'connected');
    fake.drop('bot1');
    await waitUntil(() => !a.conns.isConnected('bot1'), 2_000, 'the drop noticed');
    expect(await gauge(a.metrics, 'bot1')).toBe(0);
    await waitUntil(() => a.conns.isConnected('bot1'), 5_000, 'reconnected');
    expect(await gauge(a.metrics, 'bot1')).toBe(1);
    expect(fake.accepted('bot1')).toBe(2);
    expect(await a.store.get(keys.botWsLease('bot1'))).toBe('h-a');
  });
});
