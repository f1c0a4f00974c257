/**
 * Start-up messages a newcomer can act on: enum values read case-insensitively like the booleans, a URL without a
 * scheme told to add https://, a JSON setting's error placed by line and column without quoting the setting (it
 * may hold API keys).
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

const problemsOf = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
    return '';
  } catch (e) {
    return (e as Error).message;
  }
};

describe('configuration messages', () => {
  it('enum values are case-insensitive (Passive, WARN, Worker, OpenAI) like the booleans', () => {
    const c = loadConfig({
      WECHAT_MP_APP_ID: 'wx5823bf96d3bd56c7',
      WECHAT_MP_TOKEN: 't',
      WECHAT_MP_REPLY_MODE: 'Passive',
      LOG_LEVEL: 'WARN',
      ROLE: ' All ',
      LLM_PROVIDER: 'OpenAI',
      OPENAI_API_KEY: 'sk-x',
      HANDOFF_SERVICE_STATE: '2',
    });
    expect([c.mp?.replyMode, c.logLevel, c.role, c.llm.provider]).toEqual(['passive', 'warn', 'all', 'openai']);
    // The cross-checks read the same way: OpenAI still needs its key, Worker still needs Redis.
    expect(problemsOf({ LLM_PROVIDER: 'OpenAI' })).toContain('OPENAI_API_KEY: required when LLM_PROVIDER=openai');
    expect(problemsOf({ ROLE: 'Worker' })).toContain('ROLE: "worker" needs REDIS_URL');
  });

  it('a URL without a scheme is told to add https://; another scheme is refused plainly', () => {
    expect(problemsOf({ OPENAI_BASE_URL: 'api.deepseek.com' })).toContain('OPENAI_BASE_URL: has no scheme: add https:// (or http://) in front');
    expect(problemsOf({ AGENTS: '{"ds":{"provider":"openai","baseUrl":"api.deepseek.com","apiKey":"sk-1","model":"deepseek-chat"}}' })).toMatch(
      /AGENTS\.ds\.baseUrl: has no scheme: add https:\/\//,
    );
    expect(problemsOf({ DIFY_BASE_URL: 'ftp://dify.local/v1' })).toContain('DIFY_BASE_URL: must be an http:// or https:// URL');
  });

  it('a JSON setting with a typo names its line and column, and never quotes the setting', () => {
    const secret = 'sk-secret-0123456789abcdef';
    const agents = `{\n  "sales": {"provider": "openai", "apiKey": "${secret}", "model": "m"}\n  "support": {"provider": "echo"}\n}`;
    const message = problemsOf({ AGENTS: agents, AGENT_ROUTES: '{"kf:wkA": "sales",}', WECHAT_MP_CLICK_REPLIES: '{"HOURS": 9-18}' });
    expect(message).toContain('AGENTS: is not valid JSON: CommaExpected at line 3, column 3');
    expect(message).toMatch(/AGENT_ROUTES: is not valid JSON: \w+ at line 1, column 20/);
    expect(message).toMatch(/WECHAT_MP_CLICK_REPLIES: is not valid JSON: \w+ at line 1, column \d+/);
    expect(message).not.toContain(secret);
  });
});

describe('the real entry with Redis unreachable', () => {
  it('exits 1 with one line naming REDIS_URL (password masked), the address and the reason', async () => {
    const { spawn } = await import('node:child_process');
    const { freePort } = await import('./setup/services.js');
    const port = await freePort(); // nothing listens there
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--no-env-file'], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { PATH: process.env.PATH ?? '', REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${port}/0`, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`start-up failed: REDIS_URL redis://***@127.0.0.1:${port}/0 is unreachable: connect ECONNREFUSED 127.0.0.1:${port}`);
  }, 20_000);
});
