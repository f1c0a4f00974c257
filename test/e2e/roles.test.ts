import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeMpApi, type FakeMpApi } from '../fakes/wechat-mp-api.js';
import { buildMpPush, deliverLikeWechat, textMsg } from '../fakes/wechat-mp-push.js';
import { buildKfCallback, postCallback, startFakeWecom, type FakeWecom } from '../fakes/wecom-kf.js';
import { startChildServer, stopAllChildServers, type ChildServer } from '../helpers/child-server.js';
import { CREDS, OPEN_KFID, kfEnv, sleep, textsTo } from '../helpers/harness.js';
import { MP, MP_PATH, answeredText, mpEnv } from '../helpers/mp-harness.js';
import { canStartRedis, startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

/**
 * ROLE=web (routes only, hand-off to Redis) and ROLE=worker (pulls, LLM, sends) as separate real processes on a
 * redis-server of this file's own (the servers use the product's fixed key prefix, so they cannot share one).
 */
describe.skipIf(!canStartRedis)('web and worker processes (redis)', () => {
  let fake: FakeWecom;
  let mpApi: FakeMpApi;
  let children: ChildServer[] = [];
  let redis: PrivateRedis;
  let dbUrl = '';

  beforeAll(async () => {
    redis = await startPrivateRedis();
    dbUrl = redis.urlFor(0);
  });
  afterAll(async () => redis?.stop());
  beforeEach(async () => {
    fake = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
    mpApi = await startFakeMpApi({ appId: MP.appId, appSecret: 'unused' });
    await redis.flush(0);
  });
  afterEach(async () => {
    await stopAllChildServers();
    children = [];
    await fake.close();
    await mpApi.close();
  });

  const spawn = async (role: string) => {
    const env = {
      ...kfEnv(fake, { REDIS_URL: dbUrl, ROLE: role, LOG_LEVEL: 'warn' }),
      ...mpEnv(mpApi, { WECHAT_MP_REPLY_MODE: 'passive', WECHAT_MP_APP_SECRET: '', WECHAT_MP_PASSIVE_HOLD_MS: '800', WECHAT_MP_PASSIVE_LAST_MS: '450' }),
      REDIS_URL: dbUrl,
      ROLE: role,
      LOG_LEVEL: 'warn',
    };
    const c = await startChildServer(env);
    children.push(c);
    return c;
  };

  it('kf callbacks to the web process are answered by the workers, once each; a worker serves no callback route', async () => {
    const [web, w1] = [await spawn('web'), await spawn('worker'), await spawn('worker')];
    const users = Array.from({ length: 12 }, (_, i) => `wmRole${i}`);
    for (const [i, u] of users.entries()) {
      fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: u, content: `角色${i}` });
      const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: fake.issueSyncToken() });
      const ack = await postCallback(web!.url, '/wecom/kf/callback', cb);
      expect(ack).toMatchObject({ status: 200, body: 'success' });
    }
    await fake.waitFor(() => fake.sent.length >= users.length, 15_000);
    await sleep(600);
    expect(users.map((u) => textsTo(fake, u))).toEqual(users.map((_, i) => [`角色${i}`]));
    const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: fake.issueSyncToken() });
    expect((await postCallback(w1!.url, '/wecom/kf/callback', cb)).status).toBe(404);
    expect((await fetch(`${w1!.url}/readyz`)).status).toBe(200);
    // The pull reaches a worker as a queued job, not through a sweep of the marks (every 5 s): each of these
    // messages is answered well within that.
    for (let i = 0; i < 5; i++) {
      const user = `wmRoleFast${i}`;
      fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: user, content: `快${i}` });
      const started = Date.now();
      await postCallback(web!.url, '/wecom/kf/callback', buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: fake.issueSyncToken() }));
      await fake.waitFor(() => textsTo(fake, user).length === 1, 5000);
      expect(Date.now() - started).toBeLessThan(1500);
    }
  });

  it('an OA passive push held by the web process gets the answer a worker wrote', async () => {
    const [web] = [await spawn('web'), await spawn('worker')];
    const fields = textMsg(MP, 'oRoles', '谁来回答');
    const r = await deliverLikeWechat(web!.url, MP_PATH, () => buildMpPush(MP, 'safe', fields), { deadlineMs: 600 });
    expect(answeredText(r, 'safe')).toBe('谁来回答');
  });

  it('ROLE=web or worker without REDIS_URL stops at start with a clear message', async () => {
    await expect(startChildServer({ ...kfEnv(fake), ROLE: 'worker' }, 5000)).rejects.toThrow(/ROLE: "worker" needs REDIS_URL/);
  });
});
