import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildKfCallback, postCallback, startFakeWecom, type FakeWecom } from '../fakes/wecom-kf.js';
import { startChildServer, stopAllChildServers, type ChildServer } from '../helpers/child-server.js';
import { CREDS, OPEN_KFID, kfEnv, sleep, textsTo } from '../helpers/harness.js';
import { canStartRedis, startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

/**
 * Real server processes sharing one real Redis: a redis-server of this file's own, each test on its own database
 * (flushed first), because the server's key prefix is fixed and tests must not see each other's cursors or dedup
 * records. Never a shared Redis: flushing one is not ours to do.
 */
describe.skipIf(!canStartRedis)('several processes on one Redis', () => {
  let fake: FakeWecom;
  let children: ChildServer[] = [];
  let db = 0;
  let redis: PrivateRedis;
  const dbUrl = () => redis.urlFor(db);

  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(async () => redis?.stop());
  beforeEach(async () => {
    fake = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
  });
  afterEach(async () => {
    await stopAllChildServers();
    children = [];
    await fake.close();
  });

  const useDb = async (n: number) => {
    db = n;
    await redis.flush(n);
  };
  const spawnServer = async (extra: Record<string, string> = {}) => {
    const c = await startChildServer(kfEnv(fake, { REDIS_URL: dbUrl(), LOG_LEVEL: 'info', ...extra }));
    children.push(c);
    return c;
  };
  const callbackTo = (c: ChildServer, token = fake.issueSyncToken()) =>
    postCallback(c.url, '/wecom/kf/callback', buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: token }));

  it('two processes receiving the same callbacks: one reply per msgid and one gettoken', async () => {
    await useDb(11);
    const [a, b] = [await spawnServer(), await spawnServer()];
    const users = Array.from({ length: 20 }, (_, i) => `wmMP${i}`);
    for (const [i, u] of users.entries()) {
      fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: u, content: `消息${i}` });
      // WeCom retries land on either replica, sometimes at the same moment.
      const token = fake.issueSyncToken();
      const acks = await Promise.all([callbackTo(a!, token), callbackTo(b!, token), callbackTo(i % 2 ? a! : b!, token)]);
      expect(acks.every((r) => r.status === 200 && r.body === 'success')).toBe(true);
    }
    await fake.waitFor(() => fake.sent.length >= users.length, 15_000);
    await sleep(800);
    expect(users.map((u) => textsTo(fake, u))).toEqual(users.map((_, i) => [`消息${i}`]));
    expect(fake.gettokenCount()).toBe(1);
  });

  it('SIGKILL after the cursor moved but before send_msg answered → exactly one answer after restart', async () => {
    await useDb(12);
    // Lease = LLM_TIMEOUT_MS + 30 s: the restarted process may take the jobs over only after it.
    const env = { LLM_TIMEOUT_MS: '1000' };
    const first = await spawnServer(env);

    // Customer X: send_msg reaches WeCom but is never accepted (held), then the process dies.
    fake.holdSends(true);
    fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmKillX', content: '第一位' });
    expect((await callbackTo(first)).status).toBe(200);
    await fake.waitFor(() => fake.held.length === 1, 10_000);
    fake.holdSends(false);

    // Customer Y: WeCom accepts the send, but the process dies before it hears so (and before it records it).
    fake.setDelay('send_msg', 60_000);
    fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmKillY', content: '第二位' });
    expect((await callbackTo(first)).status).toBe(200);
    await fake.waitFor(() => textsTo(fake, 'wmKillY').length === 1, 10_000);

    const cursorMoves = fake.calls.filter((c) => c.api === 'sync_msg' && c.errcode === 0).length;
    expect(cursorMoves).toBeGreaterThanOrEqual(2);
    expect(await first.stop('SIGKILL')).toBeNull();
    fake.setDelay('send_msg', 0);

    const second = await spawnServer(env);
    await fake.waitFor(() => textsTo(fake, 'wmKillX').length === 1, 45_000);
    await sleep(1500);
    expect(textsTo(fake, 'wmKillX')).toEqual(['第一位']);
    // Y's re-send used the same msgid; WeCom refused it as a repeat, which counts as sent: no second copy.
    expect(textsTo(fake, 'wmKillY')).toEqual(['第二位']);
    const ySends = fake.calls.filter((c) => c.api === 'send_msg' && c.body.touser === 'wmKillY');
    expect(ySends.map((c) => c.errcode)).toEqual([0, 40058]);
    expect(second.output.some((l) => l.includes('part was already delivered'))).toBe(true);
  }, 90_000);

  it('SIGTERM releases unfinished work so a restarted process answers it at once', async () => {
    await useDb(13);
    const env = { LLM_TIMEOUT_MS: '20000' };
    const first = await spawnServer(env);
    fake.holdSends(true);
    fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmTerm', content: '优雅退出' });
    // Queued behind the first (same customer), not started when SIGTERM comes.
    fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmTerm', content: '第二条' });
    await callbackTo(first);
    await fake.waitFor(() => fake.held.length === 1, 10_000);
    fake.holdSends(false);
    const started = Date.now();
    expect(await first.stop('SIGTERM')).toBe(0);
    const second = await spawnServer(env);
    await fake.waitFor(() => textsTo(fake, 'wmTerm').length === 2, 20_000).catch((e: unknown) => {
      console.log('FIRST:\n' + first.output.join('\n') + '\nSECOND:\n' + second.output.join('\n'));
      throw e;
    });
    // Without the release both would wait for the 50 s lease / hand-off grace.
    expect(Date.now() - started).toBeLessThan(20_000);
    await sleep(500);
    expect(textsTo(fake, 'wmTerm')).toEqual(['优雅退出', '第二条']);
  }, 60_000);
});
