/**
 * `npm run doctor` (src/doctor, scripts/doctor.ts): each check against the fakes and real servers, for its failure
 * and its success — WeCom 60020 and a wrong secret, OA 40164, an OpenAI-compatible agent with a wrong key and a
 * right one, Redis with an evicting policy and without AOF, MySQL (pending migrations, applied, wrong password),
 * the clock, a long-connection bot — and the command's lines and exit code as a child process.
 */
import { spawn } from 'node:child_process';
import { createPool } from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import pino from 'pino';
import { checkAgent, checkBot, checkConfig, checkMysql, checkRedis, checkRedisCluster, formatResult, runDoctor, type DoctorResult } from '../src/doctor/index.js';
import { defaultMigrationsDir, loadMigrations, runMigrations } from '../src/log/migrate.js';
import { poolOptionsFromUrl } from '../src/log/mysql-db.js';
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai.js';
import { startFakeMpApi, type FakeMpApi } from './fakes/wechat-mp-api.js';
import { startFakeWecomBotWs, type FakeWecomBotWs } from './fakes/wecom-bot-ws.js';
import { startFakeWecom, type FakeWecom } from './fakes/wecom-kf.js';
import { CREDS } from './helpers/harness.js';
import { createTestDatabase, mysqlUrl, type TestDatabase } from './helpers/mysql.js';
import { canStartRedis, startPrivateRedis, type PrivateRedis } from './helpers/private-redis.js';
import { clusterSeeds, redisClusterNodes } from './helpers/redis.js';
import { createMetrics } from '../src/metrics.js';
import { createBullmqQueue } from '../src/pipeline/bullmq-queue.js';
import { queueShardPrefixes } from '../src/pipeline/queue-shards.js';
import { createRedisStore } from '../src/store/redis.js';

const MP = { appId: 'wx5823bf96d3bd56c7', appSecret: 'mp-app-secret-0123456789', token: 'mptoken1' };
const OPENAI_KEY = 'sk-doctor-right-key-0123456789';

function kfVars(fake: FakeWecom, secret = CREDS.kfSecret): Record<string, string> {
  return {
    WECOM_CORP_ID: CREDS.corpId,
    WECOM_KF_SECRET: secret,
    WECOM_TOKEN: CREDS.token,
    WECOM_ENCODING_AES_KEY: CREDS.encodingAesKey,
    WECOM_API_BASE_URL: fake.url,
  };
}
const mpVars = (fake: FakeMpApi): Record<string, string> => ({
  WECHAT_MP_APP_ID: MP.appId,
  WECHAT_MP_APP_SECRET: MP.appSecret,
  WECHAT_MP_TOKEN: MP.token,
  WECHAT_MP_API_BASE_URL: fake.url,
});
const byName = (results: DoctorResult[], prefix: string) => {
  const found = results.filter((r) => r.name.startsWith(prefix));
  expect(found, `a line named ${prefix}…`).toHaveLength(1);
  return found[0]!;
};
const config = (env: Record<string, string>): Config => loadConfig(env);
const printed = (results: DoctorResult[]) => results.map(formatResult).join('\n');

describe('doctor: WeChat / WeCom tokens', () => {
  let kf: FakeWecom;
  let mp: FakeMpApi;
  beforeAll(async () => {
    kf = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
    mp = await startFakeMpApi({ appId: MP.appId, appSecret: MP.appSecret });
  });
  afterAll(async () => {
    await kf?.close();
    await mp?.close();
  });

  it('both tokens fetched: ✓ lines, and the clock compared with the API Date header', async () => {
    const results = await runDoctor(config({ ...kfVars(kf), ...mpVars(mp) }));
    expect(byName(results, 'kf token')).toMatchObject({ ok: true });
    expect(byName(results, 'OA token')).toMatchObject({ ok: true });
    expect(byName(results, 'clock')).toMatchObject({ ok: true, detail: expect.stringMatching(/within 1 s of the WeCom API Date header|1 s/) });
    expect(mp.stableTokenRequests.at(-1)?.force_refresh).toBe(false);
    expect(printed(results)).not.toMatch(new RegExp(`${CREDS.kfSecret}|${MP.appSecret}`));
  });

  it('kf 60020: the egress IP is not trusted; the fix names the trusted-IP list and WECHAT_API_PROXY', async () => {
    kf.failNext('gettoken', 60020);
    const r = byName(await runDoctor(config(kfVars(kf))), 'kf token');
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/errcode 60020.*trusted-IP list \(企业可信IP\)/);
    expect(r.fix).toMatch(/WECHAT_API_PROXY/);
    expect(formatResult(r)).toMatch(/^✗ kf token \(WeCom gettoken\): .* — fix: .*WECHAT_API_PROXY/);
  });

  it('kf 40001: a wrong Secret, never shown', async () => {
    const r = byName(await runDoctor(config(kfVars(kf, 'the-wrong-kf-secret'))), 'kf token');
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/errcode 40001/), fix: expect.stringMatching(/WECOM_KF_SECRET/) });
    expect(formatResult(r)).not.toContain('the-wrong-kf-secret');
  });

  it('OA 40164: the IP whitelist; the fix names IP白名单 and WECHAT_API_PROXY', async () => {
    mp.failNext('stable_token', 40164);
    const r = byName(await runDoctor(config(mpVars(mp))), 'OA token');
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/errcode 40164.*IP whitelist/);
    expect(r.fix).toMatch(/IP白名单.*WECHAT_API_PROXY/);
  });

  it('the local clock 2 minutes off: a warning (not a failure); past CALLBACK_MAX_SKEW_S: a failure', async () => {
    const ahead = await runDoctor(config(kfVars(kf)), { now: () => Date.now() + 120_000 });
    expect(byName(ahead, 'clock')).toMatchObject({ ok: true, warning: true, detail: expect.stringMatching(/^1(19|20|21) s ahead of the WeCom API Date header/) });
    expect(formatResult(byName(ahead, 'clock'))).toMatch(/^! clock: .* — fix: .*NTP/);
    const far = await runDoctor(config({ ...kfVars(kf), CALLBACK_MAX_SKEW_S: '100' }), { now: () => Date.now() - 150_000 });
    expect(byName(far, 'clock')).toMatchObject({ ok: false, detail: expect.stringMatching(/behind .*CALLBACK_MAX_SKEW_S=100/) });
  });

  it('an unreachable API origin: a transport failure naming the base URL variable', async () => {
    const r = byName(await runDoctor(config({ ...kfVars(kf), WECOM_API_BASE_URL: 'http://127.0.0.1:9' }), { apiTimeoutMs: 2000 }), 'kf token');
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/cannot reach http:\/\/127\.0\.0\.1:9/), fix: expect.stringMatching(/WECOM_API_BASE_URL/) });
  });
});

describe('doctor: agents', () => {
  let openai: FakeOpenAI;
  beforeAll(async () => {
    openai = await startFakeOpenAI({ apiKey: OPENAI_KEY });
  });
  afterAll(async () => openai?.close());

  const agentOf = (key: string) =>
    config({ LLM_PROVIDER: 'openai', OPENAI_BASE_URL: openai.baseUrl, OPENAI_API_KEY: key, LLM_TIMEOUT_MS: '5000' }).agents[0]!;

  it('a wrong key: 401 → check the API key (OPENAI_API_KEY), the key never shown', async () => {
    const r = await checkAgent(agentOf('sk-the-wrong-key-987654'));
    expect(r).toMatchObject({ ok: false, name: 'agent default (openai)', fix: expect.stringMatching(/check the API key \(OPENAI_API_KEY\)/) });
    expect(r.detail).toMatch(/HTTP 401/);
    expect(formatResult(r)).not.toContain('sk-the-wrong-key');
  });

  it('the right key: the probe is answered', async () => {
    const before = openai.requests.length;
    const r = await checkAgent(agentOf(OPENAI_KEY));
    expect(r).toMatchObject({ ok: true, detail: expect.stringMatching(/answered in \d+\.\d s from http:\/\/127\.0\.0\.1:\d+\/v1: "AI:ping/) });
    expect(openai.requests.length).toBe(before + 1);
  });

  it('a provider that never answers: timeout → check the base URL / network', async () => {
    openai.script({ kind: 'hang' });
    const r = await checkAgent(agentOf(OPENAI_KEY), 500);
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/no answer .* within 500 ms/), fix: expect.stringMatching(/base URL and the network/) });
  });

  it('echo passes without a call', async () => {
    expect(await checkAgent(config({}).agents[0]!)).toMatchObject({ ok: true, name: 'agent default (echo)' });
  });
});

describe.skipIf(!canStartRedis)('doctor: Redis', () => {
  let redis: PrivateRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    client = new Redis(redis.urlFor(0));
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it('allkeys-lru and no AOF: both fail with their fix; noeviction and appendonly yes: both pass', async () => {
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const bad = await checkRedis(redis.urlFor(0), { now: Date.now });
    expect(bad.map((r) => [r.name, r.ok])).toEqual([
      ['Redis', true],
      ['Redis maxmemory-policy', false],
      ['Redis AOF', false],
      ['queue shards', true],
    ]);
    expect(bad[1]).toMatchObject({ detail: expect.stringMatching(/^allkeys-lru: .*evicts/), fix: expect.stringMatching(/noeviction/) });
    expect(bad[2]).toMatchObject({ detail: expect.stringMatching(/messages may be lost on a Redis restart/), fix: expect.stringMatching(/appendonly yes/) });

    await client.config('SET', 'maxmemory-policy', 'noeviction');
    await client.config('SET', 'appendonly', 'yes');
    await client.config('SET', 'appendfsync', 'always');
    try {
      const good = await checkRedis(redis.urlFor(0), { now: Date.now });
      expect(good.map((r) => [r.name, r.ok, r.warning ?? false])).toEqual([
        ['Redis', true, false],
        ['Redis maxmemory-policy', true, false],
        ['Redis AOF', true, false],
        ['queue shards', true, false],
      ]);
    } finally {
      // A redis-server still writing its first AOF does not stop on SIGTERM.
      await client.config('SET', 'appendonly', 'no');
    }
  });

  it('jobs left under another QUEUE_SHARDS value: a warning that names it, the count and what serves them', async () => {
    const base = 'bridge';
    const web = createBullmqQueue({
      producer: client,
      workerConnection: null,
      prefix: base,
      shardPrefixes: queueShardPrefixes(base, 2, false),
      layouts: { key: `${base}:queue-layouts`, shards: 2, defaultShards: 1, prefixesOf: (n) => queueShardPrefixes(base, n, false) },
      store: createRedisStore(client, `${base}:`),
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      handler: { run: async () => undefined, giveUp: async () => undefined },
      leaseMs: 5000,
      dedupTtlMs: 60_000,
      concurrency: 1,
    });
    const payload = JSON.stringify({ channel: 'kf', type: 'kf.text', open_kfid: 'wkAcc', external_userid: 'u1', msgid: 'm1', send_time: 0, content: 'hi' });
    try {
      await web.handOff([{ id: 'kf:wkAcc:u1:m1', payload }, { id: 'kf:wkAcc:u2:m2', payload }]);
      const same = await checkRedis(redis.urlFor(0), { now: Date.now, queueShards: 2 });
      expect(byName(same, 'queue shards')).toMatchObject({ ok: true, detail: 'QUEUE_SHARDS=2 (no job left under QUEUE_SHARDS=1)' });
      const changed = await checkRedis(redis.urlFor(0), { now: Date.now, queueShards: 3 });
      expect(byName(changed, 'queue shards (QUEUE_SHARDS=2)')).toMatchObject({
        ok: true,
        warning: true,
        detail: expect.stringMatching(/^2 jobs still wait under QUEUE_SHARDS=2 \(last used 0 min ago\); this configuration uses 3$/),
        fix: expect.stringMatching(/restart the workers/),
      });
    } finally {
      await web.stop(100);
      await client.flushdb();
    }
  });

  it('through runDoctor: Redis TIME is the clock when no WeChat channel is configured', async () => {
    const results = await runDoctor(config({ REDIS_URL: redis.urlFor(0) }), { now: () => Date.now() + 90_000 });
    expect(byName(results, 'clock')).toMatchObject({ ok: true, warning: true, detail: expect.stringMatching(/^(89|90|91) s ahead of the Redis TIME/) });
  });

  it('unreachable, with a password in the URL: fails without showing it', async () => {
    const [r] = await checkRedis('redis://:hunter2-redis@127.0.0.1:1/0', { now: Date.now });
    expect(r).toMatchObject({ ok: false, name: 'Redis', fix: expect.stringMatching(/REDIS_URL/) });
    expect(formatResult(r!)).not.toContain('hunter2');
  });
});

describe.skipIf(!redisClusterNodes)('doctor: redis cluster', () => {
  it('the test cluster: state ok with 3 masters; each master without AOF fails by name; through runDoctor too', async () => {
    const nodes = clusterSeeds();
    const results = await checkRedisCluster({ nodes, password: null }, { now: Date.now });
    expect(results[0]).toMatchObject({ name: 'Redis Cluster', ok: true, detail: expect.stringMatching(/cluster_state ok, 3 masters, 16384 slots assigned/) });
    const aof = results.filter((r) => r.name.startsWith('Redis AOF ('));
    expect(aof).toHaveLength(3);
    for (const r of aof) expect(r).toMatchObject({ ok: false, fix: expect.stringMatching(/appendonly yes/) });
    const viaRun = await runDoctor(config({ REDIS_CLUSTER_NODES: redisClusterNodes }), { now: Date.now });
    expect(viaRun.filter((r) => r.name.startsWith('Redis')).map((r) => r.name)).toContain('Redis Cluster');
  });

  it('unreachable seeds, with a password: fails naming REDIS_CLUSTER_NODES without showing the password', async () => {
    const [r] = await checkRedisCluster({ nodes: [{ host: '127.0.0.1', port: 1 }], password: 'hunter2-cluster' }, { now: Date.now });
    expect(r).toMatchObject({ ok: false, name: 'Redis Cluster', fix: expect.stringMatching(/REDIS_CLUSTER_NODES/) });
    expect(formatResult(r!)).not.toContain('hunter2');
  });
});

// CI provides MariaDB and fails the run when any test is skipped (.ci/run), so this never goes silently missing there.
describe.skipIf(!mysqlUrl)('doctor: MySQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('doctor');
  });
  afterAll(async () => db?.drop());

  it('an empty database the user may write: pending migrations are fine (the server applies them); the probe table is gone', async () => {
    const results = await checkMysql(db.url);
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['MySQL', true],
      ['MySQL schema', true],
    ]);
    expect(results[1]!.detail).toMatch(/migration\(s\) pending .*the server applies them at start/);
    expect(await db.query('SHOW TABLES')).toEqual([]);
    expect(printed(results)).not.toContain(decodeURIComponent(new URL(db.url).password));
  });

  it('every migration applied: says so', async () => {
    const pool = createPool(poolOptionsFromUrl(db.url, 1));
    try {
      const conn = await pool.getConnection();
      await runMigrations(conn, loadMigrations(defaultMigrationsDir()));
      conn.release();
    } finally {
      await pool.end();
    }
    const [, schema] = await checkMysql(db.url);
    expect(schema).toMatchObject({ ok: true, detail: expect.stringMatching(/^every migration is applied \(up to 001_init\.sql/) });
  });

  it('a wrong password: access denied, the fix names MYSQL_URL, the password never shown', async () => {
    const u = new URL(db.url);
    u.password = 'not-the-password-42';
    const [r] = await checkMysql(u.toString());
    expect(r).toMatchObject({ ok: false, name: 'MySQL', fix: expect.stringMatching(/user and password in MYSQL_URL/) });
    expect(formatResult(r!)).not.toContain('not-the-password-42');
  });

  it('a database that does not exist: the fix says how to create it', async () => {
    const u = new URL(db.url);
    u.pathname = `/${db.name}_missing`;
    const [r] = await checkMysql(u.toString());
    expect(r).toMatchObject({ ok: false, fix: expect.stringMatching(/CREATE DATABASE/) });
  });
});

describe('doctor: smart bots', () => {
  let ws: FakeWecomBotWs;
  beforeAll(async () => {
    ws = await startFakeWecomBotWs({ bots: { aib_doctor: 'ws-secret-right' } });
  });
  afterAll(async () => ws?.close());

  const bot = (secret: string) => config({ WECOM_BOTS: JSON.stringify({ aib_doctor: { mode: 'websocket', secret } }), WECOM_BOT_WS_URL: ws.url });

  it('the right secret: subscribed once, then disconnected', async () => {
    const c = bot('ws-secret-right');
    expect(await checkBot(c.bots[0]!, { wsUrl: c.botWsUrl, connect: true })).toMatchObject({ ok: true, detail: `subscribed at ${ws.url}` });
    expect(ws.accepted('aib_doctor')).toBe(1);
    await expect.poll(() => ws.openConnections('aib_doctor')).toBe(0);
  });

  it('a wrong secret: the refusal is reported clearly, the secret never shown', async () => {
    const c = bot('ws-secret-wrong');
    const r = await checkBot(c.bots[0]!, { wsUrl: c.botWsUrl, connect: true });
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/WeCom refused the subscribe: errcode 853000/), fix: expect.stringMatching(/BotID and the long-connection Secret/) });
    expect(formatResult(r)).not.toContain('ws-secret-wrong');
  });

  it('nothing listening: a connection failure within the timeout', async () => {
    const r = await checkBot(bot('x').bots[0]!, { wsUrl: 'ws://127.0.0.1:9', connect: true, timeoutMs: 3000 });
    expect(r).toMatchObject({ ok: false, fix: expect.stringMatching(/WECOM_BOT_WS_URL/) });
  });

  it('callback bots pass on their configuration; --skip-bot-connect only lists long-connection bots', async () => {
    const cb = config({ WECOM_BOTS: JSON.stringify({ aib_cb: { token: 't', encodingAesKey: CREDS.encodingAesKey } }) });
    expect(await checkBot(cb.bots[0]!, { wsUrl: cb.botWsUrl, connect: true })).toMatchObject({ ok: true });
    const subscribes = ws.subscribes('aib_doctor');
    const c = bot('ws-secret-right');
    expect(await checkBot(c.bots[0]!, { wsUrl: c.botWsUrl, connect: false })).toMatchObject({ ok: true, warning: true });
    expect(ws.subscribes('aib_doctor')).toBe(subscribes);
  });
});

describe('doctor: the configuration', () => {
  it('problems become one failed line each, with a fix and without the secret value', () => {
    const { config: c, results } = checkConfig({ WECOM_CORP_ID: 'ww1', WECHAT_API_PROXY: 'socks5://u:proxy-pw-123@h:1', LLM_PROVIDER: 'openai' });
    expect(c).toBeNull();
    expect(results.every((r) => !r.ok && r.fix)).toBe(true);
    const text = printed(results);
    expect(text).toMatch(/✗ configuration: WECHAT_API_PROXY: must be an http:\/\/ or https:\/\/ proxy URL/);
    expect(text).toMatch(/kf channel is partly configured: missing WECOM_KF_SECRET.* — fix: set WECOM_KF_SECRET/);
    expect(text).toMatch(/OPENAI_API_KEY: required when LLM_PROVIDER=openai — fix: set OPENAI_API_KEY/);
    expect(text).not.toContain('proxy-pw-123');
  });
});

/** Runs `npx tsx scripts/doctor.ts --no-env-file` with exactly `env` (plus PATH/HOME). */
function runScript(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'scripts/doctor.ts', '--no-env-file'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('npm run doctor (the script)', () => {
  let kf: FakeWecom;
  beforeAll(async () => {
    kf = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
  });
  afterAll(async () => kf?.close());

  it('exit 0 when every check passes; exit 1 with ✗ and the fix on 60020; secrets never printed', { timeout: 60_000 }, async () => {
    const ok = await runScript(kfVars(kf));
    expect(ok.out).toMatch(/^✓ configuration: loads/m);
    expect(ok.out).toMatch(/^✓ kf token \(WeCom gettoken\)/m);
    expect(ok.code).toBe(0);

    kf.failNext('gettoken', 60020);
    const bad = await runScript(kfVars(kf));
    expect(bad.out).toMatch(/^✗ kf token \(WeCom gettoken\): errcode 60020 .* — fix: .*WECHAT_API_PROXY/m);
    expect(bad.out).toMatch(/checks failed/);
    expect(bad.code).toBe(1);
    expect(ok.out + bad.out).not.toContain(CREDS.kfSecret);
  });

  it('a configuration that does not load: its problems, exit 1', { timeout: 60_000 }, async () => {
    const r = await runScript({ WECOM_CORP_ID: 'ww1' });
    expect(r.out).toMatch(/^✗ configuration: kf channel is partly configured/m);
    expect(r.code).toBe(1);
  });
});
