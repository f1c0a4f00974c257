import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOllama, type FakeOllama } from './ollama.js';

const MODEL = 'qwen2.5:7b';
let fake: FakeOllama;

beforeEach(async () => {
  fake = await startFakeOllama({ models: [MODEL, 'llama3.2'] });
});
afterEach(async () => {
  await fake.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const chatBody = (content: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: MODEL,
  messages: [
    { role: 'system', content: 'be nice' },
    { role: 'user', content },
  ],
  ...extra,
});

function post(body: unknown, init: { signal?: AbortSignal; path?: string } = {}): Promise<Response> {
  return fetch(`${fake.baseUrl}${init.path ?? '/api/chat'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

/** Reads the raw NDJSON text; every line must be `\n`-terminated. `reads` are the chunks as they arrived. */
async function readLines(res: Response): Promise<{ lines: string[]; raw: string; reads: string[] }> {
  const decoder = new TextDecoder();
  const reads: string[] = [];
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) reads.push(decoder.decode(bytes, { stream: true }));
  const raw = reads.join('');
  const lines = raw.split('\n');
  expect(lines.pop()).toBe(''); // ends on a line boundary
  return { lines, raw, reads };
}
const objs = (lines: string[]): Any[] => lines.map((l) => JSON.parse(l));
const content = (all: Any[]): string => all.map((o) => o.message?.content ?? '').join('');

describe('fake Ollama /api/chat', () => {
  it('streams NDJSON deltas (stream absent = true), one line split across writes, then one done:true with stats', async () => {
    const user = '你好，请问营业时间？😀👍🏽';
    const res = await post(chatBody(user, { keep_alive: '30m', options: { temperature: 0.2, num_ctx: 8192 } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const { lines, raw, reads } = await readLines(res);
    expect(reads.some((r) => !r.endsWith('\n'))).toBe(true);
    expect(raw).not.toContain('\r');
    const all = objs(lines);
    expect(all.filter((o) => o.done === true)).toHaveLength(1);
    expect(all.slice(0, -1).every((o) => o.done === false && o.model === MODEL && o.message.role === 'assistant')).toBe(true);
    expect(all[0].created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(content(all)).toBe(`Ollama:${user}`);
    const last = all.at(-1);
    expect(last).toMatchObject({ model: MODEL, message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' });
    expect(last.prompt_eval_count).toBe(Array.from(`be nice${user}`).length);
    expect(last.eval_count).toBe(Array.from(`Ollama:${user}`).length);
    for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration']) expect(last[k]).toBeGreaterThan(1000);
    await fake.waitForRequests(1);
    expect(fake.requests[0]?.body).toMatchObject({ keep_alive: '30m', options: { num_ctx: 8192 } });
  });

  it('sends thinking deltas first, done_reason length, delays, and accepts base64 images', async () => {
    fake.script({ kind: 'answer', thinking: '用户在问候', text: '您好！', doneReason: 'length', chunkSize: 2, delayMs: 1, firstByteDelayMs: 80 });
    const body = chatBody('看图', { stream: true });
    (body.messages as Any[])[1].images = [Buffer.from([0xff, 0xd8, 0xff]).toString('base64')];
    const t0 = Date.now();
    const res = await post(body);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
    const all = objs((await readLines(res)).lines);
    const kinds = all.slice(0, -1).map((o) => (o.message.thinking ? 't' : 'c'));
    expect(kinds.join('')).toMatch(/^t+c+$/);
    expect(all.map((o) => o.message.thinking ?? '').join('')).toBe('用户在问候');
    expect(content(all)).toBe('您好！');
    expect(all.at(-1)).toMatchObject({ done: true, done_reason: 'length' });
  });

  it('decodes every message\'s images onto the request record', async () => {
    const body = chatBody('看图');
    (body.messages as Any[])[1].images = [Buffer.from([0xff, 0xd8, 0xff]).toString('base64'), Buffer.from('png').toString('base64')];
    expect((await post(body)).status).toBe(200);
    expect((await post(chatBody('no image'))).status).toBe(200);
    await fake.waitForRequests(2);
    expect(fake.requests[0]?.images).toEqual([{ message: 1, data: Buffer.from([0xff, 0xd8, 0xff]) }, { message: 1, data: Buffer.from('png') }]);
    expect(fake.requests[1]?.images).toEqual([]);
  });

  it('answers stream:false with one JSON object', async () => {
    const res = await post(chatBody('hi', { stream: false }));
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toMatchObject({ model: MODEL, message: { role: 'assistant', content: 'Ollama:hi' }, done: true, done_reason: 'stop', eval_count: 9 });
  });

  it('streams answers > 64 KB intact', async () => {
    const text = '长'.repeat(40_000) + 'end';
    fake.script({ kind: 'answer', text, chunkSize: 3000 });
    expect(content(objs((await readLines(await post(chatBody('long')))).lines))).toBe(text);
  });

  it('rejects unknown models with 404, resolving a missing tag to :latest', async () => {
    const res = await post(chatBody('hi', { model: 'mistral' }));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'model "mistral" not found, try pulling it first' });
    expect((await post(chatBody('hi', { model: 'llama3.2', stream: false }))).status).toBe(200);
    expect((await post(chatBody('hi', { model: 'llama3.2:latest', stream: false }))).status).toBe(200);
    expect(fake.models).toEqual([MODEL, 'llama3.2:latest']);
  });

  it('rejects bad bodies and data: URI images with 400, treats no messages as a load call, records everything', async () => {
    expect([(await post('{nope')).status, (await post({ messages: [] })).status]).toEqual([400, 400]);
    const body = chatBody('看图');
    (body.messages as Any[])[1].images = ['data:image/jpeg;base64,/9j/'];
    const bad = await post(body);
    expect([bad.status, await bad.json()]).toEqual([400, { error: 'illegal base64 data at input byte 4' }]);
    expect(await (await post({ model: MODEL })).json()).toMatchObject({ done: true, done_reason: 'load' });
    expect((await post(chatBody('x'), { path: '/api/generate' })).status).toBe(404);
    expect(await (await fetch(`${fake.baseUrl}/api/tags`)).json()).toMatchObject({ models: [{ name: MODEL }, { name: 'llama3.2:latest' }] });
    await fake.waitForRequests(6);
    expect(fake.requests.map((r) => `${r.method} ${r.path}`).slice(-2)).toEqual(['POST /api/generate', 'GET /api/tags']);
    expect(fake.requests[0]?.body).toBe('{nope');
    await expect(fake.waitForRequests(7, 50)).rejects.toThrow(/6\/7/);
  });
});

describe('fake Ollama failures', () => {
  it('replies scripted statuses with {"error"} bodies', async () => {
    fake.script({ kind: 'status', status: 429 }, { kind: 'status', status: 500, error: 'boom' }, { kind: 'status', status: 502 });
    const r429 = await post(chatBody('hi'));
    expect([r429.status, ((await r429.json()) as Any).error]).toEqual([429, expect.stringMatching(/^server busy/)]);
    const r500 = await post(chatBody('hi'));
    expect([r500.status, await r500.json()]).toEqual([500, { error: 'boom' }]);
    expect((await post(chatBody('hi'))).status).toBe(502);
    expect((await post(chatBody('hi'))).status).toBe(200); // script consumed
  });

  it('error-line sends {"error"} under HTTP 200 after some deltas, then ends', async () => {
    fake.script({ kind: 'error-line', afterDeltas: 2, error: 'llama runner crashed' });
    const res = await post(chatBody('一二三四五六七八九十'));
    expect(res.status).toBe(200);
    const all = objs((await readLines(res)).lines);
    expect(all.at(-1)).toEqual({ error: 'llama runner crashed' });
    expect(content(all)).toBe('Ollama:一'); // two 4-code-point deltas
    expect(all.some((o) => o.done === true)).toBe(false);
  });

  it('truncate ends without done:true; drop destroys the socket', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 2 }, { kind: 'drop', afterDeltas: 1 });
    const all = objs((await readLines(await post(chatBody('一二三四五六七八九十')))).lines);
    expect(all).toHaveLength(2);
    expect(all.every((o) => o.done === false)).toBe(true);
    await expect(readLines(await post(chatBody('hello there')))).rejects.toThrow();
  });

  it('invalid-json sends one cut-off line, then the rest of a normal stream', async () => {
    fake.script({ kind: 'invalid-json', afterDeltas: 1 });
    const { lines } = await readLines(await post(chatBody('hello there')));
    const bad = lines.filter((l) => {
      try {
        return void JSON.parse(l);
      } catch {
        return true;
      }
    });
    expect(bad).toHaveLength(1);
    expect(lines.indexOf(bad[0] as string)).toBe(1);
    const ok = objs(lines.filter((l) => l !== bad[0]));
    expect(content(ok)).toBe('Ollama:hello there');
    expect(ok.at(-1)?.done).toBe(true);
  });

  it('hang sends headers then silence and records the client aborting; close() does not hang', async () => {
    fake.setDefault({ kind: 'hang' });
    const ac = new AbortController();
    const res = await post(chatBody('hi'), { signal: ac.signal });
    expect(res.status).toBe(200);
    ac.abort();
    const deadline = Date.now() + 2000;
    while (!fake.requests[0]?.closedByClient && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fake.requests[0]?.closedByClient).toBe(true);
    const reading = readLines(await post(chatBody('hi'))).catch((e: unknown) => e);
    await fake.close();
    expect(await reading).toBeInstanceOf(Error);
    expect(fake.requests[1]?.closedByClient).toBe(false);
  });

  it('non-stream failures: hang sends nothing, error-line is a 500, truncate is half a body', async () => {
    fake.script({ kind: 'error-line', afterDeltas: 0 }, { kind: 'truncate', afterDeltas: 0 }, { kind: 'hang' });
    const r500 = await post(chatBody('hi', { stream: false }));
    expect(r500.status).toBe(500);
    await expect((await post(chatBody('hi', { stream: false }))).json()).rejects.toThrow();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 150);
    await expect(post(chatBody('hi', { stream: false }), { signal: ac.signal })).rejects.toThrow();
    clearTimeout(timer);
  });
});
