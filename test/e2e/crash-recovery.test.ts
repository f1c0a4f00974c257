import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { buildKfCallback, postCallback, startFakeWecom, type FakeWecom } from '../fakes/wecom-kf.js';
import { startChildServer, stopAllChildServers } from '../helpers/child-server.js';
import { CREDS, OPEN_KFID, kfEnv, sleep, textsTo } from '../helpers/harness.js';
import { canStartRedis, startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

/**
 * interface.md "Crash recovery": a message whose process died while working on it is picked up by a restarted
 * process within 20 s, whatever LLM_TIMEOUT_MS is, and answered once. kill -9 during a 5 s LLM answer with
 * LLM_TIMEOUT_MS=60000 (the job's lock is short and renewed, not the LLM deadline plus a margin).
 */
describe.skipIf(!canStartRedis)('crash recovery within 20 s (kf, real processes, real Redis)', () => {
  let redis: PrivateRedis;
  let llm: FakeOpenAI;
  let fake: FakeWecom;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    await redis.flush(7);
    llm = await startFakeOpenAI({ apiKey: 'sk-test' });
    fake = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
  });
  afterAll(async () => {
    await stopAllChildServers();
    await fake.close();
    await llm.close();
    await redis?.stop();
  });

  it('kill -9 mid-answer, restart: answered once, within 20 s of the kill', async () => {
    const env = kfEnv(fake, {
      REDIS_URL: redis.urlFor(7),
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: llm.baseUrl,
      OPENAI_API_KEY: 'sk-test',
      LLM_TIMEOUT_MS: '60000',
      LOG_LEVEL: 'warn',
    });
    // The killed process's call takes 5 s (never finished); the restarted process's is answered at once.
    llm.script({ kind: 'answer', text: '来不及说完', firstByteDelayMs: 5000 }, { kind: 'answer', text: '重启后的回答' });
    const a = await startChildServer(env);
    fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmCrash', content: '在吗' });
    const ack = await postCallback(a.url, '/wecom/kf/callback', buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: fake.issueSyncToken() }));
    expect(ack.status).toBe(200);
    await llm.waitForRequests(1, 10_000);
    await a.stop('SIGKILL');
    const killedAt = Date.now();
    await startChildServer(env);
    await fake.waitFor(() => textsTo(fake, 'wmCrash').length > 0, 25_000);
    const tookMs = Date.now() - killedAt;
    await sleep(1500);
    expect(textsTo(fake, 'wmCrash')).toEqual(['重启后的回答']);
    expect(tookMs).toBeLessThan(20_000);
    console.log(`kf message answered by the restarted process ${tookMs} ms after kill -9 (LLM_TIMEOUT_MS=60000)`);
  }, 60_000);
});
