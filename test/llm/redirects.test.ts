import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../src/config-agents.js';
import { LlmError } from '../../src/errors.js';
import { createAdapter } from '../../src/llm/create-adapter.js';

const common = { name: 'a', systemPrompt: null, timeoutMs: 2000, replyOnTimeout: 't', replyOnError: 'e', welcome: null, idleMs: 30_000, maxConcurrency: 4 };

/** A server on 127.0.0.1 that answers every request with `handle`; counts what reached it. */
async function serve(handle: (path: string) => { status: number; headers?: Record<string, string>; body?: string }): Promise<{ server: Server; url: string; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((rq, rs) => {
    paths.push(rq.url ?? '');
    rq.resume();
    const r = handle(rq.url ?? '');
    rs.writeHead(r.status, r.headers).end(r.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

describe('LLM APIs: redirects are not followed', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  for (const provider of ['openai', 'dify', 'ollama'] as const) {
    it(`${provider}: a 301 is a non-retryable error naming where it pointed; the other host gets nothing`, async () => {
      const elsewhere = await serve(() => ({ status: 200, body: '{}' }));
      const api = await serve(() => ({ status: 301, headers: { location: `${elsewhere.url}/v1/secret-path?key=abc` } }));
      servers.push(elsewhere.server, api.server);
      const agent: AgentConfig =
        provider === 'openai'
          ? { ...common, provider, baseUrl: `${api.url}/v1`, apiKey: 'sk-redirect-test', model: 'm', vision: false }
          : provider === 'dify'
            ? { ...common, provider, baseUrl: `${api.url}/v1`, apiKey: 'app-redirect-test', mode: 'chat', inputKey: 'query', outputKey: 'text' }
            : { ...common, provider, baseUrl: api.url, model: 'm', keepAlive: null };
      const err = await createAdapter(agent)
        .reply({ userId: 'kf:wk:u', text: '你好', state: null, traceId: 't' }, new AbortController().signal)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LlmError);
      expect((err as LlmError).kind).toBe('bad_request');
      expect((err as LlmError).retryable).toBe(false);
      expect((err as LlmError).message).toContain(`HTTP 301, redirected to ${elsewhere.url}`);
      expect((err as LlmError).message).not.toContain('secret-path');
      expect(api.paths).toHaveLength(1);
      expect(elsewhere.paths).toEqual([]);
    });
  }
});
