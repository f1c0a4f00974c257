import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { textMsg } from '../fakes/wechat-mp-push.js';
import { sleep } from '../helpers/harness.js';
import { MODES, MP, answeredText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';
import { redisUrl } from '../helpers/redis.js';

const API_KEY = 'sk-test-auto-0123456789';
const DEADLINE_MS = 600;
const ENV = { WECHAT_MP_AUTO_HOLD_MS: '250', WECHAT_MP_PASSIVE_HOLD_MS: '800', WECHAT_MP_PASSIVE_LAST_MS: '450' };
const sends = (h: MpHarness) => h.api.calls.filter((c) => c.api === 'custom_send');

/** WECHAT_MP_REPLY_MODE=auto: passive when the answer is ready within the hold, else ack and send actively. */
describe('Official Account, auto mode', () => {
  let h: MpHarness;
  let llm: FakeOpenAI;
  const start = (redis = false) =>
    startMpHarness({
      redis,
      deadlineMs: DEADLINE_MS,
      env: { WECHAT_MP_REPLY_MODE: 'auto', LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: API_KEY, ...ENV },
    });
  beforeEach(async () => {
    llm = await startFakeOpenAI({ apiKey: API_KEY });
  });
  afterEach(async () => {
    await h?.close();
    await llm.close();
  });

  for (const mode of MODES) {
    it(`${mode}: ready within the hold → the passive reply, no custom/send`, async () => {
      h = await start();
      const r = await h.deliver(textMsg(MP, 'oQuick', '快问'), mode);
      expect(r.attempts).toHaveLength(1);
      expect(answeredText(r, mode)).toBe('AI:快问');
      await sleep(300);
      expect(sends(h)).toEqual([]);
    });
  }

  it('not ready within the hold → `success` at the hold, then the answer through custom/send; one LLM call', async () => {
    h = await start();
    llm.script({ kind: 'answer', firstByteDelayMs: 700 });
    const r = await h.deliver(textMsg(MP, 'oLater', '慢问'), 'safe');
    expect(answeredText(r, 'safe')).toBe('success');
    expect(r.attempts[0]!.ms).toBeGreaterThanOrEqual(240);
    expect(r.attempts[0]!.ms).toBeLessThan(DEADLINE_MS);
    await h.api.waitFor(() => h.api.sent.length === 1);
    expect(h.api.sent[0]!.content).toBe('AI:慢问');
    expect(llm.requests).toHaveLength(1);
  });

  it('a ready answer longer than one message goes out actively in order (the passive reply holds one message)', async () => {
    h = await start();
    const long = Array.from({ length: 3 }, (_, i) => `第${i + 1}节${'内容'.repeat(300)}`).join('\n\n');
    llm.script({ kind: 'answer', text: long, chunkSize: 500 });
    const r = await h.deliver(textMsg(MP, 'oMulti', '长一点'), 'plaintext');
    expect(answeredText(r, 'plaintext')).toBe('success');
    await h.api.waitFor(() => h.api.sent.length === 3);
    expect(h.api.sent.map((s) => s.content?.slice(0, 3))).toEqual(['第1节', '第2节', '第3节']);
  });

  it('an account that answers 48001 switches to passive (metric, with Redis): the kept answer is the next reply', async () => {
    h = await start(redisUrl !== '');
    h.api.setUnauthorized(true);
    llm.script({ kind: 'answer', firstByteDelayMs: 500 });
    const first = await h.deliver(textMsg(MP, 'oUnverified', '问题一'), 'safe');
    expect(answeredText(first, 'safe')).toBe('success');
    await h.api.waitFor(() => sends(h).length === 1);
    expect(sends(h)[0]!.errcode).toBe(48001);
    await sleep(200);
    const gauge = await h.deps.metrics.registry.getSingleMetricAsString('bridge_mp_passive_only');
    expect(gauge).toContain(`appid="${MP.appId}"} 1`);
    expect(h.logs.lines.some((l) => String(l.msg).includes('48001') && l.level === 50)).toBe(true);

    const next = await h.deliver(textMsg(MP, 'oUnverified', '在吗'), 'safe');
    expect(answeredText(next, 'safe')).toBe('AI:问题一');
    const third = await h.deliver(textMsg(MP, 'oUnverified', '问题三'), 'safe');
    expect(answeredText(third, 'safe')).toBe('AI:问题三');
    expect(llm.requests).toHaveLength(2);
    expect(sends(h)).toHaveLength(1);
  });
});
