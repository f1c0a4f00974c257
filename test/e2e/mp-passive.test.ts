import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OA_TEXT_MAX_BYTES, utf8Bytes } from '../../src/format/split.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { buildMpPush, deliverLikeWechat, textMsg, type MpMode } from '../fakes/wechat-mp-push.js';
import { sleep } from '../helpers/harness.js';
import { MODES, MP, MP_PATH, answeredText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';
import { redisUrl } from '../helpers/redis.js';

const API_KEY = 'sk-test-passive-0123456789';
// WeChat's 5 s deadline shrunk to 600 ms: deliveries 1 and 2 are held 800 ms (past it), the third gives up at 450 ms.
const DEADLINE_MS = 600;
const SHRUNK = { WECHAT_MP_PASSIVE_HOLD_MS: '800', WECHAT_MP_PASSIVE_LAST_MS: '450' };
const STILL = '正在思考中，请稍后发送任意消息获取回答。';

/** WECHAT_MP_REPLY_MODE=passive (accounts without the customer-service API): every answer is a passive reply. */
describe('Official Account, passive mode', () => {
  let h: MpHarness;
  let llm: FakeOpenAI;
  const start = (env: Record<string, string> = {}, redis = false) =>
    startMpHarness({
      redis,
      deadlineMs: DEADLINE_MS,
      env: {
        WECHAT_MP_REPLY_MODE: 'passive',
        WECHAT_MP_APP_SECRET: '',
        LLM_PROVIDER: 'openai',
        OPENAI_BASE_URL: llm.baseUrl,
        OPENAI_API_KEY: API_KEY,
        ...SHRUNK,
        ...env,
      },
    });
  beforeEach(async () => {
    llm = await startFakeOpenAI({ apiKey: API_KEY });
  });
  afterEach(async () => {
    await h?.close();
    await llm.close();
  });

  for (const mode of MODES) {
    it(`${mode}: a fast answer is the passive reply of the first delivery (encrypted iff encrypt_type=aes); no API call`, async () => {
      h = await start();
      const r = await h.deliver(textMsg(MP, 'oFast', '营业时间？'), mode);
      expect(r.attempts).toHaveLength(1);
      expect(answeredText(r, mode, 'oFast')).toBe('AI:营业时间？');
      if (mode !== 'plaintext') expect(r.answered!.body).toMatch(/^<xml><Encrypt>/);
      else expect(r.answered!.body).not.toContain('Encrypt');
      expect(h.api.calls).toEqual([]);
    });

    it(`${mode}: a slow answer: delivery 1 is held past the deadline (never 'success'), delivery 2 gets it; one LLM call`, async () => {
      h = await start();
      llm.setDefault({ kind: 'answer', firstByteDelayMs: 850 });
      const r = await h.deliver(textMsg(MP, 'oSlow', '慢慢想'), mode);
      expect(r.attempts[0]).toMatchObject({ status: null, cut: true });
      expect(r.answered?.attempt).toBe(2);
      expect(answeredText(r, mode)).toBe('AI:慢慢想');
      expect(llm.requests).toHaveLength(1);
    });
  }

  const stillThinking = async (mode: MpMode) => {
    llm.script({ kind: 'answer', firstByteDelayMs: 2300 });
    const r = await h.deliver(textMsg(MP, 'oThink', '很难的问题'), mode);
    expect(r.attempts.map((a) => a.cut)).toEqual([true, true, false]);
    expect(r.attempts[2]!.ms).toBeLessThan(DEADLINE_MS);
    expect(answeredText(r, mode)).toBe(STILL);
    await llm.waitForRequests(1);
    await sleep(800);
    // "Send any message to get the answer": the next message fetches it and is not itself sent to the LLM.
    const next = await h.deliver(textMsg(MP, 'oThink', '好了吗'), mode);
    expect(next.answered?.attempt).toBe(1);
    expect(answeredText(next, mode)).toBe('AI:很难的问题');
    expect(llm.requests).toHaveLength(1);
    // And the one after is an ordinary question again.
    const third = await h.deliver(textMsg(MP, 'oThink', '谢谢'), mode);
    expect(answeredText(third, mode)).toBe('AI:谢谢');
    expect(llm.requests).toHaveLength(2);
  };

  it('the third delivery gives up with REPLY_STILL_THINKING; the stored answer is the reply to the next message', async () => {
    h = await start();
    await stillThinking('safe');
  });

  it('the same still-thinking path with the Redis store', async () => {
    h = await start({}, redisUrl !== '');
    expect(h.deps.store.kind).toBe(redisUrl ? 'redis' : 'memory');
    await stillThinking('compatible');
  });

  it('a next message that arrives while the answer is still being written waits for it and gets it', async () => {
    h = await start();
    llm.script({ kind: 'answer', firstByteDelayMs: 2500 });
    const first = await h.deliver(textMsg(MP, 'oWait', '第一问'), 'safe');
    expect(answeredText(first, 'safe')).toBe(STILL);
    const next = await h.deliver(textMsg(MP, 'oWait', '？'), 'safe');
    expect(answeredText(next, 'safe')).toBe('AI:第一问');
    expect(llm.requests).toHaveLength(1);
  });

  it('the last delivery cut before its give-up time still keeps the answer for the next message', async () => {
    h = await start();
    llm.script({ kind: 'answer', firstByteDelayMs: 1800 });
    const fields = textMsg(MP, 'oCut', '问题被切断');
    const push = () => buildMpPush(MP, 'safe', fields);
    await deliverLikeWechat(h.url, MP_PATH, push, { deadlineMs: DEADLINE_MS, attempts: 2 });
    // The third delivery's connection closes after 150 ms, before WECHAT_MP_PASSIVE_LAST_MS (450).
    const third = await deliverLikeWechat(h.url, MP_PATH, push, { deadlineMs: 150, attempts: 1 });
    expect(third.answered).toBeNull();
    await llm.waitForRequests(1);
    await sleep(1200);
    const next = await h.deliver(textMsg(MP, 'oCut', '在吗'), 'safe');
    expect(answeredText(next, 'safe')).toBe('AI:问题被切断');
    expect(llm.requests).toHaveLength(1);
  });

  it('an answer finished after every delivery is over (a crash, a backlog) is kept for the next message, not lost', async () => {
    h = await start();
    // WeChat's later deliveries never reached this server: only the first one, then nothing for > 2·HOLD + LAST.
    llm.script({ kind: 'answer', firstByteDelayMs: 3400 });
    const once = await h.deliver(textMsg(MP, 'oLate', '迟到的回答'), 'safe', { attempts: 1 });
    expect(once.answered).toBeNull();
    await llm.waitForRequests(1);
    await sleep(3300);
    const next = await h.deliver(textMsg(MP, 'oLate', '？'), 'safe');
    expect(answeredText(next, 'safe')).toBe('AI:迟到的回答');
  });

  it('a long answer: the first ≤ 2000-byte part now with a hint, the rest on the next messages; one LLM call', async () => {
    h = await start();
    const paragraphs = Array.from({ length: 6 }, (_, i) => `第${i + 1}部分：${'详细说明'.repeat(60)}。`);
    llm.script({ kind: 'answer', text: paragraphs.join('\n\n'), chunkSize: 200 });
    const replies: string[] = [];
    for (const text of ['请详细说明', '1', '1']) {
      replies.push(answeredText(await h.deliver(textMsg(MP, 'oLong', text), 'plaintext'), 'plaintext'));
    }
    for (const r of replies) expect(utf8Bytes(r)).toBeLessThanOrEqual(OA_TEXT_MAX_BYTES);
    expect(replies[0]!.startsWith('第1部分')).toBe(true);
    expect(replies[0]).toMatch(/回复任意消息查看剩余部分/);
    expect(replies[2]).not.toMatch(/回复任意消息/);
    expect(replies.join('')).toContain('第6部分');
    expect(llm.requests).toHaveLength(1);
  });

  it('at WeChat’s real timing (5 s deadline, default holds): a 6.5 s answer is the reply to delivery 2', async () => {
    h = await start({ WECHAT_MP_PASSIVE_HOLD_MS: '5500', WECHAT_MP_PASSIVE_LAST_MS: '4500' });
    llm.setDefault({ kind: 'answer', firstByteDelayMs: 6500 });
    const r = await h.deliver(textMsg(MP, 'oReal', '真实时序'), 'safe', { deadlineMs: 5000 });
    expect(r.attempts[0]).toMatchObject({ status: null, cut: true });
    expect(r.answered?.attempt).toBe(2);
    expect(answeredText(r, 'safe')).toBe('AI:真实时序');
    expect(llm.requests).toHaveLength(1);
  }, 20_000);

  it('an LLM failure is answered with REPLY_ON_ERROR as the passive reply (not held, not silent)', async () => {
    h = await start();
    llm.setDefault({ kind: 'status', status: 401 });
    const r = await h.deliver(textMsg(MP, 'oErr', '你好'), 'safe');
    expect(answeredText(r, 'safe')).toBe(h.config.replies.onError);
  });
});
