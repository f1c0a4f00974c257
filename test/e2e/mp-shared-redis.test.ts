import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { buildMpPush, deliverLikeWechat, textMsg } from '../fakes/wechat-mp-push.js';
import { MP, MP_PATH, answeredText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';
import { redisClusterNodes, redisUrl, uniquePrefix } from '../helpers/redis.js';

const API_KEY = 'sk-test-shared-0123456789';

/**
 * Two servers on one Redis behind a load balancer: WeChat's retry of a held passive delivery may reach the other
 * instance. It must attach to the work started by the first (one LLM call) and serve its answer.
 */
for (const store of ['redis', 'redis cluster'] as const) describe.skipIf(store === 'redis' ? !redisUrl : !redisClusterNodes)(`Official Account, two instances sharing Redis (${store})`, () => {
  let a: MpHarness;
  let b: MpHarness;
  let llm: FakeOpenAI;
  beforeEach(async () => {
    llm = await startFakeOpenAI({ apiKey: API_KEY });
    const prefix = uniquePrefix('mp-shared');
    const start = () =>
      startMpHarness({
        redis: store === 'redis' ? true : 'cluster',
        overrides: { redisPrefix: prefix },
        env: {
          WECHAT_MP_REPLY_MODE: 'passive',
          WECHAT_MP_PASSIVE_HOLD_MS: '800',
          WECHAT_MP_PASSIVE_LAST_MS: '450',
          LLM_PROVIDER: 'openai',
          OPENAI_BASE_URL: llm.baseUrl,
          OPENAI_API_KEY: API_KEY,
        },
      });
    [a, b] = await Promise.all([start(), start()]);
  });
  afterEach(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await llm.close();
  });

  for (const mode of ['safe', 'plaintext'] as const) {
    it(`${store}, ${mode}: delivery 1 held on instance A, the retry on instance B gets the answer; one LLM call`, async () => {
      llm.setDefault({ kind: 'answer', firstByteDelayMs: 900 });
      const fields = textMsg(MP, 'oShared', '两台服务器');
      const push = () => buildMpPush(MP, mode, fields);
      const first = await deliverLikeWechat(a.urlFor(mode), MP_PATH, push, { deadlineMs: 600, attempts: 1 });
      expect(first.answered).toBeNull();
      const retry = await deliverLikeWechat(b.urlFor(mode), MP_PATH, push, { deadlineMs: 600, attempts: 2 });
      expect(answeredText(retry, mode)).toBe('AI:两台服务器');
      expect(llm.requests).toHaveLength(1);
      const dedup = await b.deps.metrics.registry.getSingleMetricAsString('bridge_dedup_hits_total');
      expect(dedup).toMatch(/channel="mp"} [1-9]/);
    });
  }

  it(`${store}: the still-thinking answer kept by instance A is the reply to the next message on instance B`, async () => {
    llm.script({ kind: 'answer', firstByteDelayMs: 2300 });
    const r = await a.deliver(textMsg(MP, 'oMoved', '慢问题'), 'safe', { deadlineMs: 600 });
    expect(answeredText(r, 'safe')).toBe(a.config.replies.stillThinking);
    await llm.waitForRequests(1);
    await new Promise((res) => setTimeout(res, 900));
    const next = await b.deliver(textMsg(MP, 'oMoved', '？'), 'safe', { deadlineMs: 600 });
    expect(answeredText(next, 'safe')).toBe('AI:慢问题');
    expect(llm.requests).toHaveLength(1);
  });

  it(`${store}: a next message on instance B while A is still writing the answer waits for it (customer lock), gets it`, async () => {
    llm.script({ kind: 'answer', firstByteDelayMs: 2600 }, { kind: 'answer' }, { kind: 'answer' });
    const r = await a.deliver(textMsg(MP, 'oRace', '问题A'), 'safe', { deadlineMs: 600 });
    expect(answeredText(r, 'safe')).toBe(a.config.replies.stillThinking);
    const next = await b.deliver(textMsg(MP, 'oRace', '问题B'), 'safe', { deadlineMs: 600 });
    expect(answeredText(next, 'safe')).toBe('AI:问题A');
    const third = await b.deliver(textMsg(MP, 'oRace', '问题C'), 'safe', { deadlineMs: 600 });
    expect(answeredText(third, 'safe')).toBe('AI:问题C');
    expect(llm.requests).toHaveLength(2);
  });
});
