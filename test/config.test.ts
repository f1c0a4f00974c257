import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

/** Config values a real deployment would hold secret; distinctive so that a leak is unmistakable. */
const SECRETS = {
  WECOM_KF_SECRET: 'kfSecretValue-9f3a1c77e2',
  WECOM_TOKEN: 'TokenValue7Qz',
  // 42 characters: invalid, and must still not be echoed
  WECOM_ENCODING_AES_KEY: 'AesKeyValue0123456789abcdefghijABCDEFGHIJ4',
  OPENAI_API_KEY: 'sk-openaiKeyValue-5d2e8b',
  REDIS_PASSWORD: 'redisPw-h7k2x9',
};

const KF_ALL = {
  WECOM_CORP_ID: 'ww0123456789abcdef',
  WECOM_KF_SECRET: SECRETS.WECOM_KF_SECRET,
  WECOM_TOKEN: SECRETS.WECOM_TOKEN,
  WECOM_ENCODING_AES_KEY: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
};

/** Runs loadConfig and returns the ConfigError it must throw. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(Object.keys(env))}`);
}

function expectNoSecret(text: string): void {
  for (const v of Object.values(SECRETS)) expect(text).not.toContain(v);
  // nor a recognisable part of the 42-character key
  expect(text).not.toContain(SECRETS.WECOM_ENCODING_AES_KEY.slice(0, 16));
}

describe('loadConfig: defaults (docs/configuration.md "Environment")', () => {
  it('an empty environment gives every documented default and no channel', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.host).toBe('0.0.0.0');
    expect(c.logLevel).toBe('info');
    expect(c.kf).toBeNull();
    expect(c.llm.provider).toBe('echo');
    expect(c.llm.timeoutMs).toBe(60000);
    expect(c.llm.systemPrompt).toBeNull();
    expect(c.llm.openai).toEqual({
      baseUrl: 'https://api.openai.com/v1',
      apiKey: null,
      model: 'gpt-4o-mini',
      vision: true,
    });
    expect(c.keywords.reset).toEqual(['重置', 'reset', '重新开始', '清空对话']);
    expect(c.keywords.continue).toEqual(['继续']);
    expect(c.keywords.handoff).toEqual(['人工', '转人工', '人工客服']);
    expect(c.handoff).toEqual({ serviceState: 2, servicerUserid: null });
    expect(c.media).toEqual({ maxBytes: 10 * 1024 * 1024, allowHosts: '', answerImageAllowHosts: '', fileMaxBytes: 5 * 1024 * 1024 });
    expect(c.replies).toEqual({
      onTimeout: '抱歉，回答超时了，请稍后再试。',
      onError: '抱歉，服务暂时不可用，请稍后再试。',
      onReset: '好的，我们重新开始吧。',
      unsupported: '抱歉，暂时还不支持这种消息类型，请用文字描述您的问题。',
      stillThinking: '正在思考中，请稍后发送任意消息获取回答。',
      rateLimited: '您发送消息太频繁了，请稍等一分钟再发。',
      onHandoff: '正在为您转接人工客服，请稍候。',
      welcome: null,
    });
    expect(c.mp).toBeNull();
    expect(c.role).toBe('all');
    expect(c.rateLimitPerMin).toBe(20);
    expect(c.maxBodyBytes).toBe(65536);
    expect(c.callbackMaxSkewS).toBe(300);
    expect(c.redisUrl).toBeNull();
  });

  it('hand-off to a named servicer needs the servicer; the state is 2 or 3 only', () => {
    expect(() => loadConfig({ HANDOFF_SERVICE_STATE: '3' })).toThrow(/HANDOFF_SERVICER_USERID/);
    expect(() => loadConfig({ HANDOFF_SERVICE_STATE: '1' })).toThrow(/HANDOFF_SERVICE_STATE/);
    const c = loadConfig({ HANDOFF_SERVICE_STATE: '3', HANDOFF_SERVICER_USERID: 'zhangsan', HANDOFF_KEYWORDS: '找人工, agent' });
    expect(c.handoff).toEqual({ serviceState: 3, servicerUserid: 'zhangsan' });
    expect(c.keywords.handoff).toEqual(['找人工', 'agent']);
  });

  it('kf defaults: WeCom origin and both message-age limits', () => {
    const c = loadConfig(KF_ALL);
    expect(c.kf).toEqual({
      corpId: KF_ALL.WECOM_CORP_ID,
      kfSecret: KF_ALL.WECOM_KF_SECRET,
      token: KF_ALL.WECOM_TOKEN,
      encodingAesKey: KF_ALL.WECOM_ENCODING_AES_KEY,
      apiBaseUrl: 'https://qyapi.weixin.qq.com',
      coldStartMaxAgeS: 300,
      maxMessageAgeS: 172800,
    });
  });

  it('reads explicit values (numbers trimmed, trailing slashes dropped, 0 turns the skew check off)', () => {
    const c = loadConfig({
      ...KF_ALL,
      PORT: ' 8080 ',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      WECOM_API_BASE_URL: 'http://127.0.0.1:9999/',
      KF_COLD_START_MAX_AGE_S: '0',
      KF_MAX_MESSAGE_AGE_S: '3600',
      LLM_TIMEOUT_MS: '1500',
      MAX_BODY_BYTES: '1024',
      CALLBACK_MAX_SKEW_S: '0',
      REDIS_URL: `redis://:${SECRETS.REDIS_PASSWORD}@127.0.0.1:6379/2`,
      WELCOME_MESSAGE: '欢迎',
    });
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.logLevel).toBe('debug');
    expect(c.kf?.apiBaseUrl).toBe('http://127.0.0.1:9999');
    expect(c.kf?.coldStartMaxAgeS).toBe(0);
    expect(c.kf?.maxMessageAgeS).toBe(3600);
    expect(c.llm.timeoutMs).toBe(1500);
    expect(c.maxBodyBytes).toBe(1024);
    expect(c.callbackMaxSkewS).toBe(0);
    expect(c.redisUrl).toBe(`redis://:${SECRETS.REDIS_PASSWORD}@127.0.0.1:6379/2`);
    expect(c.replies.welcome).toBe('欢迎');
  });

  it('empty and blank strings count as unset', () => {
    const blank = {
      PORT: '',
      HOST: '  ',
      LOG_LEVEL: '',
      LLM_PROVIDER: '',
      LLM_TIMEOUT_MS: ' ',
      OPENAI_MODEL: '',
      RESET_KEYWORDS: '',
      REPLY_ON_RESET: '',
      MAX_BODY_BYTES: '',
      CALLBACK_MAX_SKEW_S: '',
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: ' ',
      REDIS_PASSWORD: '',
      QUEUE_SHARDS: '',
      WECOM_CORP_ID: '',
      WECOM_KF_SECRET: '',
      WECOM_TOKEN: '',
      WECOM_ENCODING_AES_KEY: '',
    };
    expect(loadConfig(blank)).toEqual(loadConfig({}));
    // one blank kf variable among three set ones is "missing", not "set"
    const e = configError({ ...KF_ALL, WECOM_TOKEN: '' });
    expect(e.problems.join('\n')).toContain('WECOM_TOKEN');
  });

  it('REDIS_CLUSTER_NODES: seeds (names, IPv4, [IPv6]) with REDIS_PASSWORD; six queue shards unless QUEUE_SHARDS says', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000, 10.0.0.6:7001,[::1]:7002', REDIS_PASSWORD: 'cluster-pass-123', ROLE: 'web' });
    expect(c.redisUrl).toBeNull();
    expect(c.redisCluster).toEqual({
      nodes: [
        { host: 'redis-a', port: 7000 },
        { host: '10.0.0.6', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      password: 'cluster-pass-123',
    });
    expect(c.queueShards).toBe(6);
    expect(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_SHARDS: '12' }).queueShards).toBe(12);
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).queueShards).toBe(1);
    expect(loadConfig({}).redisCluster).toBeNull();
  });

  it('REDIS_CLUSTER_NODES: a seed without a port, both Redis variables, or QUEUE_SHARDS out of 1-64 is refused', () => {
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1' }).problems.join('\n')).toMatch(/REDIS_CLUSTER_NODES.*host:port/);
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_URL: 'redis://127.0.0.1:6379' }).problems.join('\n')).toMatch(/REDIS_CLUSTER_NODES: set either/);
    expect(configError({ QUEUE_SHARDS: '0' }).problems.join('\n')).toContain('QUEUE_SHARDS');
    expect(configError({ QUEUE_SHARDS: '65' }).problems.join('\n')).toContain('QUEUE_SHARDS');
    const e = configError({ REDIS_CLUSTER_NODES: 'bad', REDIS_PASSWORD: 'cluster-pass-123' });
    expect(JSON.stringify(e.problems)).not.toContain('cluster-pass-123');
  });

  it('comma lists accept full-width commas, trim entries and drop empty ones', () => {
    const c = loadConfig({ RESET_KEYWORDS: ' 重置 ，reset,, 清空 ,', CONTINUE_KEYWORDS: '继续，more ， 下一页' });
    expect(c.keywords.reset).toEqual(['重置', 'reset', '清空']);
    expect(c.keywords.continue).toEqual(['继续', 'more', '下一页']);
  });

  it('LLM_PROVIDER=openai works with a key and is an error without one', () => {
    const ok = loadConfig({ LLM_PROVIDER: 'openai', OPENAI_API_KEY: SECRETS.OPENAI_API_KEY });
    expect(ok.llm.provider).toBe('openai');
    expect(ok.llm.openai.apiKey).toBe(SECRETS.OPENAI_API_KEY);
    const e = configError({ LLM_PROVIDER: 'openai' });
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('OPENAI_API_KEY');
    expect(e.problems[0]).toContain('LLM_PROVIDER=openai');
  });
});

describe('loadConfig: problems', () => {
  it('several bad values give ONE ConfigError naming every variable, without secret values', () => {
    const e = configError({
      PORT: 'abc',
      LLM_TIMEOUT_MS: '-5',
      WECOM_ENCODING_AES_KEY: SECRETS.WECOM_ENCODING_AES_KEY,
      REDIS_URL: `http://user:${SECRETS.REDIS_PASSWORD}@x`,
      LOG_LEVEL: 'loud',
      MAX_BODY_BYTES: '1e6',
      LLM_PROVIDER: 'gpt',
    });
    const named = ['PORT', 'LLM_TIMEOUT_MS', 'WECOM_ENCODING_AES_KEY', 'REDIS_URL', 'LOG_LEVEL', 'MAX_BODY_BYTES', 'LLM_PROVIDER'];
    for (const name of named) expect(e.problems.some((p) => p.includes(name)), name).toBe(true);
    for (const p of e.problems) expect(e.message).toContain(p);
    expect(e.message).toContain('"abc"'); // non-secret values are shown to help the operator
    expect(e.message).toContain('"loud"');
    expectNoSecret(e.message);
    expectNoSecret(e.problems.join('\n'));
  });

  it('numbers out of range or not whole are refused', () => {
    for (const [name, value] of [
      ['PORT', '65536'],
      ['PORT', '80.5'],
      ['PORT', '-1'],
      ['LLM_TIMEOUT_MS', '0x10'],
      ['CALLBACK_MAX_SKEW_S', '-1'],
      ['KF_MAX_MESSAGE_AGE_S', 'forever'],
    ] as const) {
      const e = configError({ [name]: value });
      expect(e.problems, `${name}=${value}`).toHaveLength(1);
      expect(e.problems[0]).toContain(name);
    }
  });

  it('Official Account: AppID + Token enable it; the AppSecret is required unless passive; defaults as documented', () => {
    const base = { WECHAT_MP_APP_ID: 'wx5823bf96d3bd56c7', WECHAT_MP_TOKEN: 'mptoken' };
    expect(configError(base).problems.join('\n')).toMatch(/missing WECHAT_MP_APP_SECRET/);
    const passive = loadConfig({ ...base, WECHAT_MP_REPLY_MODE: 'passive' });
    expect(passive.mp).toEqual({
      appId: 'wx5823bf96d3bd56c7',
      appSecret: null,
      token: 'mptoken',
      encodingAesKey: null,
      apiBaseUrl: 'https://api.weixin.qq.com',
      replyMode: 'passive',
      autoHoldMs: 2000,
      passiveHoldMs: 5500,
      passiveLastMs: 4500,
      clickReplies: {},
    });
    const active = loadConfig({ ...base, WECHAT_MP_APP_SECRET: 's', WECHAT_MP_CLICK_REPLIES: '{"PRICE":"价格表"}' });
    expect(active.mp?.replyMode).toBe('active');
    expect(active.mp?.clickReplies).toEqual({ PRICE: '价格表' });
    const partial = configError({ WECHAT_MP_ENCODING_AES_KEY: SECRETS.WECOM_ENCODING_AES_KEY }).problems.join('\n');
    expect(partial).toMatch(/missing WECHAT_MP_APP_ID, WECHAT_MP_TOKEN, WECHAT_MP_APP_SECRET/);
    expectNoSecret(partial);
    for (const bad of ['[1]', '{"K":""}', 'not json', '{"K":3}']) {
      expect(configError({ ...base, WECHAT_MP_APP_SECRET: 's', WECHAT_MP_CLICK_REPLIES: bad }).problems.join('\n')).toContain(
        'WECHAT_MP_CLICK_REPLIES',
      );
    }
    expect(configError({ ...base, WECHAT_MP_REPLY_MODE: 'sometimes' }).problems.join('\n')).toContain('WECHAT_MP_REPLY_MODE');
  });

  it('a partly configured kf channel lists the missing names (and only those)', () => {
    const e = configError({ WECOM_CORP_ID: KF_ALL.WECOM_CORP_ID, WECOM_TOKEN: SECRETS.WECOM_TOKEN });
    const text = e.problems.join('\n');
    expect(text).toContain('WECOM_KF_SECRET');
    expect(text).toContain('WECOM_ENCODING_AES_KEY');
    expect(text).not.toMatch(/missing[^\n]*WECOM_CORP_ID/);
    expect(text).not.toMatch(/missing[^\n]*WECOM_TOKEN/);
    expectNoSecret(e.message);
  });

  it('cross-variable problems are reported together with value problems', () => {
    const e = configError({
      PORT: 'abc',
      WECOM_TOKEN: SECRETS.WECOM_TOKEN,
      LLM_PROVIDER: 'openai',
    });
    const text = e.problems.join('\n');
    expect(text).toContain('PORT');
    expect(text).toMatch(/WECOM_CORP_ID/);
    expect(text).toMatch(/WECOM_KF_SECRET/);
    expect(text).toMatch(/WECOM_ENCODING_AES_KEY/);
    expect(text).toContain('OPENAI_API_KEY');
    expectNoSecret(e.message);
  });

  it('secret values never appear, even when they are the invalid ones', () => {
    const cases: Array<[string, Record<string, string>]> = [
      ['WECOM_ENCODING_AES_KEY', { ...KF_ALL, WECOM_ENCODING_AES_KEY: SECRETS.WECOM_ENCODING_AES_KEY }],
      ['WECOM_ENCODING_AES_KEY', { ...KF_ALL, WECOM_ENCODING_AES_KEY: `${SECRETS.WECOM_ENCODING_AES_KEY}!` }],
      ['WECOM_ENCODING_AES_KEY', { ...KF_ALL, WECOM_ENCODING_AES_KEY: `${SECRETS.WECOM_ENCODING_AES_KEY}xy` }],
      ['REDIS_URL', { REDIS_URL: `http://:${SECRETS.REDIS_PASSWORD}@127.0.0.1:6379` }],
      ['REDIS_URL', { REDIS_URL: `${SECRETS.REDIS_PASSWORD}` }],
      ['WECOM_CORP_ID', { WECOM_KF_SECRET: SECRETS.WECOM_KF_SECRET, WECOM_TOKEN: SECRETS.WECOM_TOKEN }],
      ['OPENAI_API_KEY', { OPENAI_API_KEY: SECRETS.OPENAI_API_KEY, LLM_PROVIDER: 'nonsense' }],
    ];
    for (const [name, env] of cases) {
      const e = configError(env);
      expect(e.message, JSON.stringify(env)).toContain(name === 'OPENAI_API_KEY' ? 'LLM_PROVIDER' : name);
      expectNoSecret(e.message);
      expectNoSecret(String(e.stack));
    }
  });
});

describe('the real entry (src/main.ts) with a bad environment', () => {
  it('exits 1 and prints every bad variable to stderr without secret values', async () => {
    const repo = resolve(import.meta.dirname, '..');
    // A throw-away cwd: no .env file there can add or override variables (dotenv reads ./.env).
    const cwd = mkdtempSync(join(tmpdir(), 'bridge-config-'));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PORT: 'abc',
      LLM_TIMEOUT_MS: '-5',
      LOG_LEVEL: 'loud',
      REDIS_URL: `http://user:${SECRETS.REDIS_PASSWORD}@x`,
      WECOM_CORP_ID: KF_ALL.WECOM_CORP_ID,
      WECOM_KF_SECRET: SECRETS.WECOM_KF_SECRET,
      WECOM_TOKEN: SECRETS.WECOM_TOKEN,
      WECOM_ENCODING_AES_KEY: SECRETS.WECOM_ENCODING_AES_KEY,
      LLM_PROVIDER: 'openai',
    };
    try {
      const tsx = import.meta.resolve('tsx');
      const child = spawn(process.execPath, ['--import', tsx, join(repo, 'src/main.ts')], {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      clearTimeout(timer);
      expect(code, stderr).toBe(1);
      for (const name of ['PORT', 'LLM_TIMEOUT_MS', 'LOG_LEVEL', 'REDIS_URL', 'WECOM_ENCODING_AES_KEY', 'OPENAI_API_KEY']) {
        expect(stderr, name).toContain(name);
      }
      expect(stderr).not.toMatch(/^\s+at /m); // a problem list, not a stack trace
      expectNoSecret(stderr);
      expectNoSecret(stdout);
      expect(stdout).not.toContain('listening');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 20_000);
});

describe('loadConfig: agents and routes (docs/configuration.md AGENTS, AGENT_ROUTES)', () => {
  const SALES = { provider: 'dify', baseUrl: 'https://dify.example.com/v1/', apiKey: 'app-secret-sales' };
  const SUPPORT = { provider: 'coze', apiToken: 'pat_secret_support', botId: '7400000000000000001', timeoutMs: 20000, welcome: '客服小助手在此' };

  it('the single-provider variables make the default agent; AGENTS adds named ones with inherited defaults', () => {
    const c = loadConfig({
      LLM_PROVIDER: 'ollama',
      OLLAMA_MODEL: 'qwen2.5:7b',
      LLM_SYSTEM_PROMPT: '你是客服',
      WELCOME_MESSAGE: '欢迎',
      AGENTS: JSON.stringify({ sales: SALES, support: SUPPORT }),
      AGENT_ROUTES: JSON.stringify({ 'kf:wkSales001': 'sales', 'mp:wx5823bf96d3bd56c7': 'support' }),
    });
    expect(c.agents.map((a) => `${a.name}:${a.provider}`)).toEqual(['default:ollama', 'sales:dify', 'support:coze']);
    expect(c.agents[0]).toMatchObject({ baseUrl: 'http://127.0.0.1:11434', model: 'qwen2.5:7b', systemPrompt: '你是客服', timeoutMs: 60000 });
    expect(c.agents[1]).toMatchObject({ baseUrl: 'https://dify.example.com/v1', mode: 'chat', outputKey: 'text', systemPrompt: null, welcome: '欢迎' });
    expect(c.agents[2]).toMatchObject({ baseUrl: 'https://api.coze.cn', timeoutMs: 20000, welcome: '客服小助手在此' });
    expect(c.agents[2]!.replyOnError).toBe('抱歉，服务暂时不可用，请稍后再试。');
    expect(c.routes).toEqual({ 'kf:wkSales001': 'sales', 'mp:wx5823bf96d3bd56c7': 'support' });
  });

  it('each provider needs its own variables as the default agent', () => {
    const needs: Array<[string, string[]]> = [
      ['dify', ['DIFY_API_KEY']],
      ['coze', ['COZE_API_TOKEN', 'COZE_BOT_ID']],
      ['ollama', ['OLLAMA_MODEL']],
      ['openai', ['OPENAI_API_KEY']],
    ];
    for (const [provider, names] of needs) {
      const text = configError({ LLM_PROVIDER: provider }).problems.join('\n');
      for (const n of names) expect(text, provider).toContain(`${n}: required when LLM_PROVIDER=${provider}`);
    }
    expect(loadConfig({ LLM_PROVIDER: 'coze', COZE_API_TOKEN: 'pat_x', COZE_BOT_ID: '1' }).agents[0]).toMatchObject({ provider: 'coze', botId: '1' });
  });

  it('every AGENTS/AGENT_ROUTES problem is listed at once, by path, without the keys inside', () => {
    const e = configError({
      PORT: 'x',
      AGENTS: JSON.stringify({
        sales: { provider: 'dify' },
        support: { provider: 'coze', apiToken: 'pat_secret_support', botid: '1' },
        'bad name': { provider: 'echo' },
        local: { provider: 'ollama', model: 'm', baseUrl: 'ftp://x' },
        mystery: { provider: 'gemini', apiKey: 'sk-secret-mystery' },
      }),
      AGENT_ROUTES: JSON.stringify({ 'kf:wkA': 'nobody', 'wechat:x': 'sales' }),
    });
    const text = e.problems.join('\n');
    expect(text).toContain('PORT');
    expect(text).toMatch(/AGENTS\.sales\.apiKey/);
    expect(text).toMatch(/AGENTS\.support\.botId/);
    expect(text).toMatch(/AGENTS\.support: .*botid|AGENTS\.support.*Unrecognized key/);
    expect(text).toMatch(/AGENTS: agent name "bad name"/);
    expect(text).toMatch(/AGENTS\.local\.baseUrl/);
    expect(text).toMatch(/AGENTS\.mystery\.provider/);
    expect(text).toContain('AGENT_ROUTES.kf:wkA: "nobody" is not an agent in AGENTS');
    expect(text).toContain('AGENT_ROUTES: "wechat:x" must be kf:<open_kfid>, mp:<AppID> or bot:<aibotid>');
    expect(e.message).not.toContain('pat_secret_support');
    expect(e.message).not.toContain('sk-secret-mystery');
    expect(configError({ AGENTS: '{not json' }).problems.join('\n')).toMatch(/AGENTS: is not valid JSON: \w+ at line 1, column 2/);
  });

  it('values that would be ignored or fail every call are refused at start', () => {
    const agents = {
      d: { provider: 'dify', apiKey: 'app-x', systemPrompt: 'ignored by Dify' },
      o: { provider: 'ollama', model: 'm', keepAlive: 'forever' },
      c: { provider: 'coze', apiToken: 'pat_x', botId: '1', baseUrl: 'https://api.coze.com/v3' },
    };
    const text = configError({ AGENTS: JSON.stringify(agents), WECHAT_MP_APP_ID: 'wxA', WECHAT_MP_TOKEN: 't', WECHAT_MP_REPLY_MODE: 'passive', AGENT_ROUTES: JSON.stringify({ 'mp:wxB': 'default' }) }).problems.join('\n');
    expect(text).toMatch(/AGENTS\.d.*systemPrompt/);
    expect(text).toMatch(/AGENTS\.o\.keepAlive/);
    expect(text).toMatch(/AGENTS\.c\.baseUrl: must be the origin only/);
    expect(text).toContain('AGENT_ROUTES: "mp:wxB" names an AppID other than WECHAT_MP_APP_ID');
    expect(configError({ COZE_BASE_URL: 'https://api.coze.cn/v3' }).problems.join('\n')).toContain('COZE_BASE_URL');
    const ok = loadConfig({ AGENTS: JSON.stringify({ o: { provider: 'ollama', model: 'm', keepAlive: '30m', idleMs: 90000 }, w: { provider: 'dify', apiKey: 'app-x', mode: 'workflow', inputKey: 'question' } }) });
    expect(ok.agents[1]).toMatchObject({ keepAlive: '30m', idleMs: 90000 });
    expect(ok.agents[2]).toMatchObject({ mode: 'workflow', inputKey: 'question', outputKey: 'text', idleMs: 30000 });
  });
});
