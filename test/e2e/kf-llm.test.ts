import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';

const SETTLE_MS = 400;
const API_KEY = 'sk-test-0123456789abcdef';

/** The kf pipeline with the openai provider against a fake OpenAI-compatible server, on a real Redis when available. */
describe('kf with an OpenAI-compatible LLM', () => {
  let h: Harness;
  let llm: FakeOpenAI;
  const start = (env: Record<string, string> = {}) =>
    startHarness({
      redis: redisUrl !== '',
      env: {
        LLM_PROVIDER: 'openai',
        OPENAI_BASE_URL: llm.baseUrl,
        OPENAI_API_KEY: API_KEY,
        OPENAI_MODEL: 'deepseek-chat',
        LLM_SYSTEM_PROMPT: '你是客服助手',
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

  it('keeps history per customer, and a reset keyword clears it without asking the LLM', async () => {
    h = await start();
    await h.customerSays('wmH', '我叫小明');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await h.customerSays('wmH', '我叫什么？');
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    expect(llm.requests[1]?.body.messages).toEqual([
      { role: 'system', content: '你是客服助手' },
      { role: 'user', content: '我叫小明' },
      { role: 'assistant', content: 'AI:我叫小明' },
      { role: 'user', content: '我叫什么？' },
    ]);
    // Another customer shares nothing.
    await h.customerSays('wmOther', '你好');
    await h.fake.waitFor(() => h.fake.sent.length >= 3);
    expect(llm.requests[2]?.body.messages).toHaveLength(2);

    await h.customerSays('wmH', ' RESET\u3000');
    await h.fake.waitFor(() => h.fake.sent.length >= 4);
    expect(textsTo(h.fake, 'wmH')[2]).toBe(h.config.replies.onReset);
    expect(llm.requests).toHaveLength(3);
    await h.customerSays('wmH', '还记得吗');
    await h.fake.waitFor(() => h.fake.sent.length >= 5);
    expect(llm.requests[3]?.body.messages).toEqual([
      { role: 'system', content: '你是客服助手' },
      { role: 'user', content: '还记得吗' },
    ]);
  });

  it('LLM timeout → exactly REPLY_ON_TIMEOUT, once', async () => {
    h = await start({ LLM_TIMEOUT_MS: '400' });
    llm.setDefault({ kind: 'hang' });
    await h.customerSays('wmTo', '在吗');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await sleep(SETTLE_MS);
    expect(textsTo(h.fake, 'wmTo')).toEqual([h.config.replies.onTimeout]);
  });

  it('LLM 500 on every attempt → 3 attempts, then exactly REPLY_ON_ERROR, once', async () => {
    h = await start();
    llm.setDefault({ kind: 'status', status: 500 });
    await h.customerSays('wmErr', '在吗');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await sleep(SETTLE_MS);
    expect(textsTo(h.fake, 'wmErr')).toEqual([h.config.replies.onError]);
    expect(llm.requests).toHaveLength(3);
  });

  it('LLM 500 then 200 → the real answer', async () => {
    h = await start();
    llm.script({ kind: 'status', status: 500 }, { kind: 'answer', text: '真正的回答' });
    await h.customerSays('wmRetry', '在吗');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await sleep(SETTLE_MS);
    expect(textsTo(h.fake, 'wmRetry')).toEqual(['真正的回答']);
  });

  it('a stream cut after partial text is never sent: the customer gets REPLY_ON_ERROR, no retry', async () => {
    h = await start();
    llm.script({ kind: 'drop', afterDeltas: 2 });
    await h.customerSays('wmDrop', '讲个故事');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await sleep(SETTLE_MS);
    expect(textsTo(h.fake, 'wmDrop')).toEqual([h.config.replies.onError]);
    expect(llm.requests).toHaveLength(1);
  });

  it('markdown is cleaned and DeepSeek reasoning never shown', async () => {
    h = await start();
    llm.script({ kind: 'answer', reasoning: '内部推理过程', text: '## 标题\n\n**重点**：请看\n\n- 第一\n- 第二' });
    await h.customerSays('wmMd', '怎么办');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    const [text] = textsTo(h.fake, 'wmMd');
    expect(text).toBe('标题\n\n重点：请看\n\n• 第一\n• 第二');
    expect(text).not.toContain('推理');
  });

  it("a customer's messages are answered in the order written, even when the first is slow", async () => {
    h = await start();
    llm.script({ kind: 'answer', text: '第一个回答比较慢', chunkSize: 1, delayMs: 60 });
    for (const t of ['一', '二', '三']) h.fake.addCustomerText({ open_kfid: 'wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw', external_userid: 'wmSeq', content: t });
    // Another customer in the same page is not held up by the slow one.
    h.fake.addCustomerText({ open_kfid: 'wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw', external_userid: 'wmFast', content: '快' });
    await h.callback();
    await h.fake.waitFor(() => h.fake.sent.length >= 4, 8000);
    expect(textsTo(h.fake, 'wmSeq')).toEqual(['第一个回答比较慢', 'AI:二', 'AI:三']);
    expect(h.fake.sent[0]?.touser).toBe('wmFast');
  });

  it('exposes LLM and reply metrics', async () => {
    h = await start();
    await h.customerSays('wmMet', 'hi');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await sleep(50);
    const res = await fetch(`${h.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/bridge_llm_duration_seconds_count\{agent="default",outcome="ok"\} 1/);
    expect(text).toMatch(/bridge_replies_total\{channel="kf",kind="answer"\} 1/);
    expect(text).toMatch(/bridge_callbacks_total\{channel="kf",outcome="accepted"\} 1/);
    expect(text).toMatch(/bridge_token_refreshes_total\{api="gettoken",outcome="ok"\} 1/);
    expect(h.logs.raw.some((l) => l.includes(API_KEY))).toBe(false);
  });
});
