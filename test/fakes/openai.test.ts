import { createParser } from 'eventsource-parser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from './openai.js';

const KEY = 'sk-test-123';
let fake: FakeOpenAI;

beforeEach(async () => {
  fake = await startFakeOpenAI({ apiKey: KEY });
});
afterEach(async () => {
  await fake.close();
});

function post(body: unknown, init: { key?: string; signal?: AbortSignal; path?: string } = {}): Promise<Response> {
  return fetch(`${fake.baseUrl}${init.path ?? '/chat/completions'}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${init.key ?? KEY}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

const streamBody = (content: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'be nice' },
    { role: 'user', content },
  ],
  stream: true,
  ...extra,
});

/** Reads an SSE body with eventsource-parser: the data payloads, the comments and the raw text. */
async function readSse(res: Response): Promise<{ data: string[]; comments: string[]; raw: string }> {
  const data: string[] = [];
  const comments: string[] = [];
  const parser = createParser({ onEvent: (e) => data.push(e.data), onComment: (c) => comments.push(c) });
  const decoder = new TextDecoder();
  let raw = '';
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    const text = decoder.decode(bytes, { stream: true });
    raw += text;
    parser.feed(text);
  }
  return { data, comments, raw };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const chunks = (data: string[]): any[] => data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));

describe('fake OpenAI chat completions', () => {
  it('streams the default answer for a Chinese message, reconstructable from deltas, then finish, usage, [DONE]', async () => {
    const user = '你好，请问营业时间？😀👍🏽';
    const res = await post(streamBody(user, { stream_options: { include_usage: true } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    const { data, comments, raw } = await readSse(res);
    const all = chunks(data);
    expect(all[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(all[0]).toMatchObject({ object: 'chat.completion.chunk', model: 'gpt-4o-mini' });
    const text = all.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe(`AI:${user}`);
    const finishIdx = all.findIndex((c) => c.choices[0]?.finish_reason != null);
    expect(all[finishIdx].choices[0]).toMatchObject({ finish_reason: 'stop', delta: {} });
    expect(all[finishIdx + 1]).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });
    expect(data.at(-1)).toBe('[DONE]');
    expect(data.length).toBe(all.length + 1);
    expect(comments.map((c) => c.trim())).toEqual(['keep-alive']);
    expect(raw).toContain('\r\n\r\n');
  });

  it('joins the text parts of an array content and answers non-stream requests as chat.completion JSON', async () => {
    const content = [
      { type: 'text', text: '看看' },
      { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,AAAA' } },
      { type: 'text', text: '这张图' },
    ];
    const res = await post(streamBody(content, { stream: false }));
    const json = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };
    expect(json).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: 'AI:看看这张图' }, finish_reason: 'stop' }] });
    expect(json.usage.total_tokens).toBe(json.usage.prompt_tokens + json.usage.completion_tokens);
  });

  it('checks image parts: decodes data URLs onto the record, keeps http(s) URLs, refuses malformed parts with 400', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const image = (url: string) => ({ type: 'image_url', image_url: { url } });
    const ok = await post(streamBody([image(`data:image/png;base64,${png.toString('base64')}`), image('https://example.com/a.jpg')], { stream: false }));
    expect(ok.status).toBe(200);
    expect(fake.requests[0]?.images).toEqual([
      { message: 1, mime: 'image/png', data: png, url: null },
      { message: 1, mime: null, data: null, url: 'https://example.com/a.jpg' },
    ]);
    const cases: [unknown, string][] = [
      [streamBody([]), 'empty_array'],
      [streamBody([{ type: 'audio', audio: {} }]), 'invalid_value'],
      [streamBody([{ type: 'text' }]), 'missing_required_parameter'],
      [streamBody([image('data:application/pdf;base64,AAAA')]), 'invalid_image_url'],
      [streamBody([image('data:image/png;base64,not base64!')]), 'invalid_image_url'],
      [streamBody([image('AAAA')]), 'invalid_image_url'],
      [{ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'assistant', content: [image('https://example.com/a.jpg')] }, { role: 'user', content: 'hi' }] }, 'invalid_value'],
    ];
    for (const [body, code] of cases) {
      const res = await post(body);
      expect([res.status, ((await res.json()) as { error: { code: string; type: string } }).error]).toEqual([400, expect.objectContaining({ code, type: 'invalid_request_error' })]);
    }
    await fake.waitForRequests(1 + cases.length);
    expect(fake.requests.slice(1).every((r) => r.images.length === 0)).toBe(true);
  });

  it('sends DeepSeek reasoning_content deltas before any content', async () => {
    fake.script({ kind: 'answer', reasoning: '用户在问候，我应该礼貌回答。', text: '您好！', chunkSize: 2, delayMs: 1 });
    const all = chunks((await readSse(await post(streamBody('hi')))).data);
    const kinds = all.flatMap((c) => {
      const d = c.choices[0]?.delta ?? {};
      return d.reasoning_content ? ['r'] : d.content ? ['c'] : [];
    });
    expect(kinds.join('')).toMatch(/^r+c+$/);
    expect(all.map((c) => c.choices[0]?.delta?.reasoning_content ?? '').join('')).toBe('用户在问候，我应该礼貌回答。');
    expect(all.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('您好！');
  });

  it('rejects a wrong key with an OpenAI-shaped 401 and still records the request', async () => {
    const res = await post(streamBody('hi'), { key: 'sk-wrong' });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    });
    await fake.waitForRequests(1);
    expect(fake.requests[0]?.headers.authorization).toBe('Bearer sk-wrong');
  });

  it('replies a scripted 429 with retry-after', async () => {
    fake.script({ kind: 'status', status: 429, retryAfterS: 7 });
    const res = await post(streamBody('hi'));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
    expect((await post(streamBody('again'))).status).toBe(200); // script consumed; default answer again
  });

  it('truncate ends the body cleanly without finish_reason or [DONE]', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 2 });
    const { data } = await readSse(await post(streamBody('一二三四五六七八九十')));
    const all = chunks(data);
    expect(data).not.toContain('[DONE]');
    expect(all.every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(all.map((c) => c.choices[0].delta.content).join('')).toBe('AI:一二三四五');
  });

  it('drop destroys the socket mid-stream and error-frame sends an error object', async () => {
    fake.script({ kind: 'drop', afterDeltas: 1 }, { kind: 'error-frame', afterDeltas: 1 });
    await expect(readSse(await post(streamBody('hello there')))).rejects.toThrow();
    const { data } = await readSse(await post(streamBody('hello there')));
    expect(JSON.parse(data.at(-1) ?? '{}').error.type).toBe('server_error');
  });

  it('hang sends headers then silence, and records the client aborting', async () => {
    fake.script({ kind: 'hang' });
    const ac = new AbortController();
    const res = await post(streamBody('hi'), { signal: ac.signal });
    expect(res.status).toBe(200);
    ac.abort();
    const deadline = Date.now() + 2000;
    while (!fake.requests[0]?.closedByClient && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fake.requests[0]?.closedByClient).toBe(true);
  });

  it('close() does not hang on a hung stream', async () => {
    fake.setDefault({ kind: 'hang' });
    const res = await post(streamBody('hi'));
    const reading = readSse(res).catch((e: unknown) => e);
    await fake.close();
    expect(await reading).toBeInstanceOf(Error);
    expect(fake.requests[0]?.closedByClient).toBe(false);
  });

  it('records every request in arrival order, including 404 and 400', async () => {
    expect((await post(streamBody('one', { stream: false }))).status).toBe(200);
    expect((await post('{not json')).status).toBe(400);
    expect((await post({ model: 'm' })).status).toBe(400);
    expect((await post(streamBody('x'), { path: '/completions' })).status).toBe(404);
    await fake.waitForRequests(4);
    expect(fake.requests.map((r) => r.body)).toEqual([streamBody('one', { stream: false }), '{not json', { model: 'm' }, streamBody('x')]);
    expect(fake.requests.every((r) => r.headers['content-type'] === 'application/json' && r.receivedAt > 0)).toBe(true);
    await expect(fake.waitForRequests(5, 50)).rejects.toThrow(/4\/5/);
  });
});
