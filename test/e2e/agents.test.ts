import { afterEach, describe, expect, it } from 'vitest';
import { startFakeCoze, type FakeCoze } from '../fakes/coze.js';
import { startFakeDify, type FakeDify } from '../fakes/dify.js';
import { startFakeOllama, type FakeOllama } from '../fakes/ollama.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';

const DIFY_KEY = 'app-test-dify-0123456789';
const COZE_TOKEN = 'pat_test_coze_0123456789';
const COZE_BOT = '7428000000000000001';
const OPENAI_KEY = 'sk-test-agents-0123456789';
const RESET = '好的，我们重新开始吧。';

interface Provider {
  name: string;
  env: Record<string, string>;
  /** what the answer to `text` looks like */
  answer(text: string): string;
  /** the conversation the provider saw on its n-th chat request (0-based): an id, or the history length */
  conversationOf(n: number): string | number | null;
  close(): Promise<void>;
}

async function dify(): Promise<Provider> {
  const f: FakeDify = await startFakeDify({ apiKey: DIFY_KEY });
  const chats = () => f.requests.filter((r) => r.path === '/v1/chat-messages');
  return {
    name: 'dify',
    env: { LLM_PROVIDER: 'dify', DIFY_BASE_URL: f.baseUrl, DIFY_API_KEY: DIFY_KEY },
    answer: (t) => `Dify:${t}`,
    conversationOf: (n) => (chats()[n]?.body as { conversation_id?: string } | undefined)?.conversation_id ?? null,
    close: () => f.close(),
  };
}

async function coze(): Promise<Provider> {
  const f: FakeCoze = await startFakeCoze({ token: COZE_TOKEN, botId: COZE_BOT });
  const chats = () => f.requests.filter((r) => r.path === '/v3/chat');
  return {
    name: 'coze',
    env: { LLM_PROVIDER: 'coze', COZE_BASE_URL: f.baseUrl, COZE_API_TOKEN: COZE_TOKEN, COZE_BOT_ID: COZE_BOT },
    answer: (t) => `Coze:${t}`,
    conversationOf: (n) => chats()[n]?.query.conversation_id ?? null,
    close: () => f.close(),
  };
}

async function ollama(): Promise<Provider> {
  const f: FakeOllama = await startFakeOllama({ models: ['qwen2.5:7b'] });
  return {
    name: 'ollama',
    env: { LLM_PROVIDER: 'ollama', OLLAMA_BASE_URL: f.baseUrl, OLLAMA_MODEL: 'qwen2.5:7b', LLM_SYSTEM_PROMPT: '你是客服' },
    answer: (t) => `Ollama:${t}`,
    // system prompt + history + the new user turn
    conversationOf: (n) => ((f.requests.filter((r) => r.path === '/api/chat')[n]?.body as { messages?: unknown[] })?.messages?.length ?? 0) - 2,
    close: () => f.close(),
  };
}

async function openai(): Promise<Provider> {
  const f: FakeOpenAI = await startFakeOpenAI({ apiKey: OPENAI_KEY });
  return {
    name: 'openai',
    env: { LLM_PROVIDER: 'openai', OPENAI_BASE_URL: f.baseUrl, OPENAI_API_KEY: OPENAI_KEY },
    answer: (t) => `AI:${t}`,
    conversationOf: (n) => ((f.requests[n]?.body as { messages?: unknown[] })?.messages?.length ?? 0) - 1,
    close: () => f.close(),
  };
}

/** Each provider answers a kf customer through the whole server, keeps the conversation, and resets on a keyword. */
describe('every LLM provider behind the kf channel', () => {
  let h: Harness | null = null;
  let p: Provider | null = null;
  afterEach(async () => {
    await h?.close();
    await p?.close();
    h = null;
    p = null;
  });

  for (const make of [dify, coze, ollama, openai]) {
    it(`${make.name}: answers, carries the conversation across turns, and a reset starts a new one (redis)`, async () => {
      p = await make();
      h = await startHarness({ redis: redisUrl !== '', env: p.env });
      const say = async (text: string, n: number) => {
        await h!.customerSays('wmAgentUser', text);
        await h!.fake.waitFor(() => textsTo(h!.fake, 'wmAgentUser').length >= n, 10_000);
      };
      await say('我叫小明', 1);
      await say('我叫什么？', 2);
      await say('重置', 3);
      await say('你好', 4);
      expect(textsTo(h.fake, 'wmAgentUser')).toEqual([p.answer('我叫小明'), p.answer('我叫什么？'), RESET, p.answer('你好')]);
      const first = p.conversationOf(0);
      const second = p.conversationOf(1);
      const afterReset = p.conversationOf(2);
      if (typeof first === 'number') {
        expect([first, second, afterReset]).toEqual([0, 2, 0]);
      } else {
        expect(first).toBeNull();
        expect(second).toMatch(/\S/);
        expect(afterReset).toBeNull();
      }
    });
  }
});

/** AGENTS + AGENT_ROUTES: two kf accounts answered by two different agents in one running server. */
describe('agent routing', () => {
  let h: Harness | null = null;
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await h?.close();
    h = null;
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  it('kf:<open_kfid> routes pick the agent; an unrouted account gets the default; per-agent welcome and fallback', async () => {
    const d = await startFakeDify({ apiKey: DIFY_KEY });
    const c = await startFakeCoze({ token: COZE_TOKEN, botId: COZE_BOT });
    closers.push(() => d.close(), () => c.close());
    c.setDefault({ kind: 'envelope', code: 4100, msg: 'authentication failed' });
    const agents = {
      sales: { provider: 'dify', baseUrl: d.baseUrl, apiKey: DIFY_KEY, welcome: '销售顾问为您服务' },
      support: { provider: 'coze', baseUrl: c.baseUrl, apiToken: COZE_TOKEN, botId: COZE_BOT, replyOnError: '售后系统忙，请稍后再试' },
    };
    h = await startHarness({
      env: { AGENTS: JSON.stringify(agents), AGENT_ROUTES: JSON.stringify({ 'kf:wkSALES': 'sales', 'kf:wkSUPPORT': 'support' }) },
    });
    await h.customerSays('wmBuyer', '有优惠吗', 'wkSALES');
    await h.customerSays('wmFixer', '坏了', 'wkSUPPORT');
    await h.customerSays('wmOther', 'hello', 'wkOTHER');
    await h.fake.waitFor(() => h!.fake.sent.length >= 3, 10_000);
    expect(textsTo(h.fake, 'wmBuyer')).toEqual(['Dify:有优惠吗']);
    expect(textsTo(h.fake, 'wmFixer')).toEqual(['售后系统忙，请稍后再试']);
    expect(textsTo(h.fake, 'wmOther')).toEqual(['hello']);
    expect(d.requests.filter((r) => r.path === '/v1/chat-messages')).toHaveLength(1);
    expect((d.requests[0]?.body as { user?: string }).user).toBe('kf:wkSALES:wmBuyer');

    h.fake.enterSession({ open_kfid: 'wkSALES', external_userid: 'wmNew', withWelcomeCode: true });
    h.fake.enterSession({ open_kfid: 'wkOTHER', external_userid: 'wmNew2', withWelcomeCode: true });
    await h.callback('wkSALES');
    await h.callback('wkOTHER');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmNew').length === 1, 5000);
    await sleep(300);
    expect(textsTo(h.fake, 'wmNew')).toEqual(['销售顾问为您服务']);
    expect(textsTo(h.fake, 'wmNew2')).toEqual([]);
  });

  it('reasoning in <think> never reaches the customer; a filtered answer gets REPLY_ON_ERROR, not its partial text', async () => {
    const o = await startFakeOpenAI({ apiKey: OPENAI_KEY });
    closers.push(() => o.close());
    o.script(
      { kind: 'answer', text: '<think>客户问营业时间，查一下资料……</think>\n\n我们每天 9 点开门。' },
      { kind: 'answer', text: '这部分内容', finishReason: 'content_filter' },
    );
    h = await startHarness({ env: { LLM_PROVIDER: 'openai', OPENAI_BASE_URL: o.baseUrl, OPENAI_API_KEY: OPENAI_KEY } });
    await h.customerSays('wmThink', '几点开门？');
    await h.fake.waitFor(() => h!.fake.sent.length === 1, 5000);
    await h.customerSays('wmThink', '敏感问题');
    await h.fake.waitFor(() => h!.fake.sent.length === 2, 5000);
    expect(textsTo(h.fake, 'wmThink')).toEqual(['我们每天 9 点开门。', h.config.replies.onError]);
  });

  it('maxConcurrency bounds an agent\'s LLM calls at once; the others wait their turn and are all answered', async () => {
    const o = await startFakeOpenAI({ apiKey: OPENAI_KEY });
    closers.push(() => o.close());
    o.setDefault({ kind: 'answer', firstByteDelayMs: 250 });
    const agents = { slow: { provider: 'openai', baseUrl: o.baseUrl, apiKey: OPENAI_KEY, maxConcurrency: 1 } };
    h = await startHarness({ env: { AGENTS: JSON.stringify(agents), AGENT_ROUTES: JSON.stringify({ 'kf:wkSLOW': 'slow' }) } });
    for (const user of ['wmC1', 'wmC2', 'wmC3']) h.fake.addCustomerText({ open_kfid: 'wkSLOW', external_userid: user, content: user });
    await h.callback('wkSLOW');
    await h.fake.waitFor(() => h!.fake.sent.length === 3, 5000);
    const starts = o.requests.map((r) => r.receivedAt).sort((a, b) => a - b);
    expect(starts).toHaveLength(3);
    // One at a time: each request starts only after the previous answer (≥ 250 ms) ended.
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(240);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(240);
    expect(await h.deps.metrics.registry.getSingleMetricAsString('bridge_job_lag_seconds')).toMatch(/bridge_job_lag_seconds_count 3/);
  });

  it('refusals of one message (HTTP 400) do not open the breaker for everyone', async () => {
    const d = await startFakeDify({ apiKey: DIFY_KEY });
    closers.push(() => d.close());
    d.setDefault({ kind: 'status', status: 400, code: 'invalid_param', message: 'query is too long' });
    h = await startHarness({
      env: { LLM_PROVIDER: 'dify', DIFY_BASE_URL: d.baseUrl, DIFY_API_KEY: DIFY_KEY },
      overrides: { breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 } },
    });
    for (const [i, user] of ['wmR1', 'wmR2', 'wmR3', 'wmR4'].entries()) {
      await h.customerSays(user, '很长的问题');
      await h.fake.waitFor(() => h!.fake.sent.length === i + 1, 5000);
    }
    expect(d.requests.filter((r) => r.path === '/v1/chat-messages')).toHaveLength(4);
    expect(await h.deps.metrics.registry.getSingleMetricAsString('bridge_llm_breaker_open')).toContain('agent="default"} 0');
  });

  it('the circuit breaker opens on a failing agent (fallback at once, no LLM call) and closes after a good trial', async () => {
    const d = await startFakeDify({ apiKey: DIFY_KEY });
    closers.push(() => d.close());
    d.setDefault({ kind: 'status', status: 500 });
    h = await startHarness({
      env: { LLM_PROVIDER: 'dify', DIFY_BASE_URL: d.baseUrl, DIFY_API_KEY: DIFY_KEY },
      overrides: { breaker: { volumeThreshold: 2, resetTimeoutMs: 800 } },
    });
    const onError = h.config.replies.onError;
    for (const [i, user] of ['wmB1', 'wmB2'].entries()) {
      await h.customerSays(user, '在吗');
      await h.fake.waitFor(() => h!.fake.sent.length === i + 1, 10_000);
    }
    const calls = d.requests.length; // 3 attempts each (2 retries)
    expect(calls).toBe(6);
    await h.customerSays('wmB3', '在吗');
    await h.fake.waitFor(() => h!.fake.sent.length === 3, 5000);
    expect(d.requests.length).toBe(calls);
    expect(textsTo(h.fake, 'wmB3')).toEqual([onError]);
    expect(await h.deps.metrics.registry.getSingleMetricAsString('bridge_llm_breaker_open')).toContain('agent="default"} 1');

    d.setDefault({ kind: 'answer' });
    await sleep(900);
    await h.customerSays('wmB4', '恢复了吗');
    await h.fake.waitFor(() => h!.fake.sent.length === 4, 5000);
    expect(textsTo(h.fake, 'wmB4')).toEqual(['Dify:恢复了吗']);
    expect(await h.deps.metrics.registry.getSingleMetricAsString('bridge_llm_breaker_open')).toContain('agent="default"} 0');
  });
});
