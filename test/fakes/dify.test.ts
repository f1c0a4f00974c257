import { createParser } from 'eventsource-parser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeDify, THOUGHT_MARKER, type FakeDify } from './dify.js';

const KEY = 'app-test-123';
const USER = 'kf:wkAAA:wmBBB';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
let fake: FakeDify;

beforeEach(async () => {
  fake = await startFakeDify({ apiKey: KEY });
});
afterEach(async () => {
  await fake.close();
});

function call(path: string, body: unknown, init: { key?: string | null; signal?: AbortSignal; method?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? KEY}`;
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return fetch(`${fake.baseUrl}${path}`, { method: init.method ?? 'POST', headers, body: payload, signal: init.signal });
}
const chatBody = (query: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ query, inputs: {}, response_mode: 'streaming', user: USER, ...extra });
const chat = (query: string, extra: Record<string, unknown> = {}, init: { key?: string | null; signal?: AbortSignal } = {}): Promise<Response> =>
  call('/chat-messages', chatBody(query, extra), init);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ev = any;
/** Reads a body as bytes: the raw text, its frames (split on blank lines), the parsed `data:` events, the `data:`
 *  frames that are not JSON, and the byte offsets where one network read ended and the next began. */
async function readSse(res: Response): Promise<{ raw: string; frames: string[]; events: Ev[]; bad: string[]; bytes: Buffer; cuts: number[] }> {
  const parts: Buffer[] = [];
  const cuts: number[] = [];
  let n = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    parts.push(Buffer.from(chunk));
    n += chunk.length;
    cuts.push(n);
  }
  const bytes = Buffer.concat(parts);
  const raw = bytes.toString('utf8');
  const frames = raw.split(/\r\n\r\n|\n\n/).filter((f) => f !== '');
  const events: Ev[] = [];
  const bad: string[] = [];
  for (const f of frames.filter((x) => x.startsWith('data: '))) {
    try {
      events.push(JSON.parse(f.slice(6)));
    } catch {
      bad.push(f);
    }
  }
  return { raw, frames, events, bad, bytes, cuts: cuts.slice(0, -1) };
}
const answerOf = (events: Ev[], type = 'message'): string => events.filter((e) => e.event === type).map((e) => e.answer).join('');
const types = (events: Ev[]): string[] => events.map((e) => e.event as string);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
}

describe('fake Dify chat-messages streaming', () => {
  it('sends ping first, data-only frames, Chinese deltas that rebuild the answer, then message_end with usage', async () => {
    const query = '你好，请问营业时间？😀👍🏽';
    const res = await chat(query);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { raw, frames, events } = await readSse(res);
    expect(raw.startsWith('event: ping\n\n')).toBe(true);
    expect(frames.slice(1).every((f) => f.startsWith('data: {') && !f.includes('\n'))).toBe(true);
    expect(types(events)).toEqual([...Array(events.length - 1).fill('message'), 'message_end']);
    expect(events.length).toBeGreaterThan(3);
    expect(events.every((e) => Array.from(e.answer ?? '').length <= 4)).toBe(true);
    expect(answerOf(events)).toBe(`Dify:${query}`);
    const end = events.at(-1);
    const { conversation_id, message_id, task_id } = events[0];
    expect(conversation_id).toMatch(UUID);
    expect(events.every((e) => e.conversation_id === conversation_id && e.message_id === message_id && e.task_id === task_id)).toBe(true);
    const usage = end.metadata.usage;
    expect(usage).toMatchObject({ prompt_tokens: Array.from(query).length, completion_tokens: Array.from(`Dify:${query}`).length, currency: 'USD' });
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    // eventsource-parser drops the data-less ping and sees unnamed events only
    const parsed: Array<{ event?: string; data: string }> = [];
    createParser({ onEvent: (e) => parsed.push(e) }).feed(raw);
    expect(parsed.map((e) => JSON.parse(e.data).event)).toEqual(types(events));
    expect(parsed.every((e) => e.event === undefined)).toBe(true);
    expect(fake.conversation(conversation_id)?.turns).toMatchObject([{ query, answer: `Dify:${query}`, messageId: message_id, taskId: task_id, kind: 'answer' }]);
  });

  it('splits at least one JSON frame across two socket writes', async () => {
    const { bytes, cuts } = await readSse(await chat('一二三四五六七八'));
    const inside = cuts.filter((cut) => {
      const before = bytes.subarray(0, cut);
      const start = before.lastIndexOf('\n\n') + 2;
      return start < cut && before.subarray(start).toString('latin1').startsWith('data: {');
    });
    expect(inside.length).toBeGreaterThanOrEqual(1);
  });

  it('crlf frames with \\r\\n\\r\\n throughout, ping included', async () => {
    fake.script({ kind: 'answer', crlf: true, text: '第一行。第二行。' });
    const { raw, events } = await readSse(await chat('hi'));
    expect(raw.startsWith('event: ping\r\n\r\n')).toBe(true);
    expect(raw.replace(/\r\n/g, '')).not.toContain('\n');
    expect(answerOf(events)).toBe('第一行。第二行。');
    expect(events.at(-1).event).toBe('message_end');
  });

  it('agent variant: agent_message deltas interleaved with agent_thought frames that alone carry the marker', async () => {
    fake.script({ kind: 'answer', variant: 'agent', text: '查询结果：明天晴。', chunkSize: 2 });
    const { events } = await readSse(await chat('天气'));
    const t = types(events);
    expect(new Set(t)).toEqual(new Set(['agent_thought', 'agent_message', 'message_end']));
    expect(t.lastIndexOf('agent_thought')).toBeGreaterThan(t.indexOf('agent_message'));
    expect(t.slice(t.indexOf('agent_message'), t.lastIndexOf('agent_message')).includes('agent_thought')).toBe(true);
    expect(answerOf(events, 'agent_message')).toBe('查询结果：明天晴。');
    const withMarker = events.filter((e) => JSON.stringify(e).includes(THOUGHT_MARKER));
    expect(withMarker.length).toBeGreaterThan(0);
    expect(withMarker.every((e) => e.event === 'agent_thought')).toBe(true);
    expect((await chat('hi', { response_mode: 'blocking' })).status).toBe(200); // script consumed
    fake.script({ kind: 'answer', variant: 'agent' });
    expect(await (await chat('hi', { response_mode: 'blocking' })).json()).toMatchObject({ status: 400, code: 'invalid_param' });
  });

  it('chatflow variant wraps the message deltas in workflow/node frames; message_end is last', async () => {
    fake.script({ kind: 'answer', variant: 'chatflow' });
    const { events } = await readSse(await chat('流程'));
    const t = types(events);
    expect(t[0]).toBe('workflow_started');
    expect(t.indexOf('node_started')).toBeLessThan(t.indexOf('message'));
    expect(t.lastIndexOf('node_finished')).toBeGreaterThan(t.lastIndexOf('message'));
    expect(t.slice(-2)).toEqual(['workflow_finished', 'message_end']);
    expect(answerOf(events)).toBe('Dify:流程');
  });

  it('message_replace after the deltas carries the final answer', async () => {
    fake.script({ kind: 'answer', text: '不当内容', replaceWith: '抱歉，无法回答。' });
    const { events } = await readSse(await chat('x'));
    expect(types(events).slice(-2)).toEqual(['message_replace', 'message_end']);
    expect(answerOf(events)).toBe('不当内容');
    expect(events.at(-2).answer).toBe('抱歉，无法回答。');
    expect(fake.conversationsOf(USER)[0]?.turns[0]?.answer).toBe('抱歉，无法回答。');
  });

  it('answers blocking requests with JSON and streams a >64 KB answer intact', async () => {
    const blocking = (await (await chat('你好', { response_mode: 'blocking' })).json()) as Ev;
    expect(blocking).toMatchObject({ event: 'message', mode: 'chat', answer: 'Dify:你好', metadata: { usage: { total_tokens: 9 } } });
    expect(blocking.conversation_id).toMatch(UUID);
    const text = '长'.repeat(70_000) + '😀';
    fake.script({ kind: 'answer', text, chunkSize: 997 });
    const { events, bytes } = await readSse(await chat('big'));
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    expect(answerOf(events)).toBe(text);
  });

  it('firstByteDelayMs holds the headers back', async () => {
    fake.script({ kind: 'answer', firstByteDelayMs: 150, delayMs: 5 });
    const t0 = Date.now();
    const res = await chat('slow');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(answerOf((await readSse(res)).events)).toBe('Dify:slow');
  });
});

describe('fake Dify conversations and validation', () => {
  it('issues a conversation on the first turn and continues it per user', async () => {
    const first = (await readSse(await chat('第一句'))).events[0];
    const cid = first.conversation_id as string;
    const second = (await readSse(await chat('第二句', { conversation_id: cid }))).events;
    expect(second.every((e) => e.conversation_id === cid)).toBe(true);
    expect(fake.conversationsOf(USER).map((c) => c.turns.map((t) => t.query))).toEqual([['第一句', '第二句']]);
    await readSse(await chat('other', { user: 'u2' }));
    expect(fake.conversationsOf('u2')).toHaveLength(1);
    expect(fake.conversation(cid)?.user).toBe(USER);
  });

  it('404 for an unknown, another user\'s, expired or deleted conversation; 400 for a malformed id', async () => {
    const notFound = { code: 'not_found', message: 'Conversation Not Exists.', status: 404 };
    const cid = (await readSse(await chat('hi'))).events[0].conversation_id as string;
    let res = await chat('x', { conversation_id: '5b7a4c43-6a0e-4a8a-9d1c-0f6f1b1c2d3e' });
    expect([res.status, await res.json()]).toEqual([404, notFound]);
    res = await chat('x', { conversation_id: cid, user: 'someone-else' });
    expect([res.status, await res.json()]).toEqual([404, notFound]);
    res = await chat('x', { conversation_id: 'conv-123' });
    expect([res.status, await res.json()]).toEqual([400, { code: 'invalid_param', message: 'conversation_id is not a valid uuid', status: 400 }]);
    expect((await chat('x', { conversation_id: '' })).status).toBe(200); // empty = first turn, like Dify
    fake.expireConversation(cid);
    expect((await chat('x', { conversation_id: cid })).status).toBe(404);
    expect(() => fake.expireConversation('5b7a4c43-6a0e-4a8a-9d1c-0f6f1b1c2d3e')).toThrow(/never issued/);

    const cid2 = (await readSse(await chat('hi'))).events[0].conversation_id as string;
    expect((await call(`/conversations/${cid2}`, { user: 'someone-else' }, { method: 'DELETE' })).status).toBe(404);
    res = await call(`/conversations/${cid2}`, { user: USER }, { method: 'DELETE' });
    expect([res.status, await res.json()]).toEqual([200, { result: 'success' }]);
    expect(fake.conversation(cid2)?.deleted).toBe(true);
    expect((await chat('x', { conversation_id: cid2 })).status).toBe(404);
  });

  it('401 for a wrong or missing key, 400 for bad bodies, 404/405 for bad routes; all recorded', async () => {
    let res = await chat('hi', {}, { key: 'app-wrong' });
    expect([res.status, await res.json()]).toEqual([401, { code: 'unauthorized', message: 'Access token is invalid', status: 401 }]);
    res = await chat('hi', {}, { key: null });
    expect(((await res.json()) as Ev).code).toBe('unauthorized');
    for (const body of [chatBody(''), chatBody('q', { inputs: undefined }), chatBody('q', { user: '' }), chatBody('q', { response_mode: 'sse' })]) {
      res = await call('/chat-messages', body);
      expect([res.status, ((await res.json()) as Ev).code]).toEqual([400, 'invalid_param']);
    }
    expect(((await (await call('/chat-messages', '{oops')).json()) as Ev).code).toBe('bad_request');
    expect((await call('/completion-messages', chatBody('q'))).status).toBe(404);
    expect((await fetch(`${fake.baseUrl}/chat-messages`)).status).toBe(405);
    await fake.waitForRequests(9);
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/v1/chat-messages', body: chatBody('hi'), headers: { authorization: 'Bearer app-wrong' } });
    expect(fake.requests[6]?.body).toBe('{oops');
    expect(fake.conversationsOf(USER)).toEqual([]);
    await expect(fake.waitForRequests(10, 50)).rejects.toThrow(/9\/10/);
  });
});

describe('fake Dify failure behaviours', () => {
  it('status answers Dify envelopes (defaults per status, custom code, raw text) without creating a conversation', async () => {
    fake.script(
      { kind: 'status', status: 400 },
      { kind: 'status', status: 400, code: 'provider_quota_exceeded', message: 'quota' },
      { kind: 'status', status: 429 },
      { kind: 'status', status: 500 },
      { kind: 'status', status: 503, body: '<html>503 Service Temporarily Unavailable</html>' },
    );
    const got: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await chat('hi');
      got.push([res.status, res.headers.get('content-type')?.startsWith('application/json') ? ((await res.json()) as Ev).code : await res.text()]);
    }
    expect(got).toEqual([[400, 'invalid_param'], [400, 'provider_quota_exceeded'], [429, 'too_many_requests'], [500, 'internal_server_error'],
      [503, '<html>503 Service Temporarily Unavailable</html>']]);
    expect(fake.conversationsOf(USER)).toEqual([]);
    expect((await chat('again')).status).toBe(200);
  });

  it('error-event sends an error frame after the deltas and ends; the conversation still exists', async () => {
    fake.script({ kind: 'error-event', afterDeltas: 2 });
    const { events } = await readSse(await chat('一二三四五六七八九十'));
    expect(types(events)).toEqual(['message', 'message', 'error']);
    expect(events[2]).toMatchObject({ status: 500, code: 'completion_request_error', task_id: events[0].task_id, message_id: events[0].message_id });
    expect(fake.conversation(events[0].conversation_id)?.turns[0]?.kind).toBe('error-event');
  });

  it('truncate ends cleanly without message_end; drop destroys the socket', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 2 }, { kind: 'drop', afterDeltas: 1 });
    const { events } = await readSse(await chat('一二三四五六七八九十'));
    expect(types(events)).toEqual(['message', 'message']);
    expect(answerOf(events)).toBe('Dify:一二三'); // 4 code points per delta
    await expect(readSse(await chat('一二三四五六七八九十'))).rejects.toThrow();
  });

  it('invalid-json sends one data frame of broken JSON', async () => {
    fake.script({ kind: 'invalid-json', afterDeltas: 1 });
    const { events, bad } = await readSse(await chat('一二三四五六七八九十'));
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatch(/^data: \{"event":"message"/);
    expect(types(events).slice(0, 1)).toEqual(['message']);
    expect(events.at(-1).event).toBe('message_end');
  });

  it('hang sends headers then silence and records the client aborting; close() does not wait for a hung stream', async () => {
    fake.script({ kind: 'hang' });
    const ac = new AbortController();
    const res = await chat('hi', {}, { signal: ac.signal });
    expect(res.status).toBe(200);
    ac.abort();
    await until(() => fake.requests[0]?.closedByClient === true);
    expect(fake.requests[0]?.closedByClient).toBe(true);
    fake.setDefault({ kind: 'hang' });
    const reading = readSse(await chat('again')).catch((e: unknown) => e);
    await fake.close();
    expect(await reading).toBeInstanceOf(Error);
    expect(fake.requests[1]?.closedByClient).toBe(false);
  });

  it('stop by the same user ends a running stream with message_end', async () => {
    fake.script({ kind: 'answer', text: '很长的回答'.repeat(40), delayMs: 20 });
    const res = await chat('hi');
    const reading = readSse(res);
    await until(() => fake.conversationsOf(USER).length === 1);
    const taskId = fake.conversationsOf(USER)[0]?.turns[0]?.taskId ?? '';
    expect(await (await call(`/chat-messages/${taskId}/stop`, { user: USER })).json()).toEqual({ result: 'success' });
    const { events } = await reading;
    expect(events.at(-1).event).toBe('message_end');
    expect(answerOf(events).length).toBeLessThan(200);
    expect(fake.stops).toMatchObject([{ taskId, user: USER }]);
  });
});

describe('fake Dify workflows and files', () => {
  const run = (inputs: unknown, extra: Record<string, unknown> = {}): Promise<Response> =>
    call('/workflows/run', { inputs, response_mode: 'streaming', user: USER, ...extra });

  it('streams text_chunk deltas ending in workflow_finished (succeeded, then failed) and answers blocking', async () => {
    const { raw, events } = await readSse(await run({ query: '订单状态' }));
    expect(raw.startsWith('event: ping\n\n')).toBe(true);
    expect(types(events)).toEqual(['workflow_started', 'node_started', 'node_finished', 'node_started',
      ...Array(types(events).filter((t) => t === 'text_chunk').length).fill('text_chunk'), 'node_finished', 'workflow_finished']);
    expect(events.filter((e) => e.event === 'text_chunk').map((e) => e.data.text).join('')).toBe('Workflow:订单状态');
    expect(events.at(-1).data).toMatchObject({ status: 'succeeded', outputs: { text: 'Workflow:订单状态' }, error: null, total_tokens: expect.any(Number) });

    fake.script({ kind: 'workflow', status: 'failed', error: 'node boom' }, { kind: 'workflow', outputs: { reply: 'r' } });
    expect((await readSse(await run({ query: 'q' }))).events.at(-1).data).toMatchObject({ status: 'failed', outputs: {}, error: 'node boom' });
    const blocking = (await (await run({ query: 'q' }, { response_mode: 'blocking' })).json()) as Ev;
    expect(blocking.data).toMatchObject({ status: 'succeeded', outputs: { reply: 'r' } });
    expect(((await (await run(undefined)).json()) as Ev).code).toBe('invalid_param');
    fake.script({ kind: 'error-event', afterDeltas: 1 });
    const failed = (await readSse(await run({ query: '一二三四五' }))).events;
    expect(types(failed).slice(-2)).toEqual(['text_chunk', 'error']);
    expect(failed.at(-1)).toMatchObject({ status: 500, code: 'completion_request_error', workflow_run_id: failed[0].workflow_run_id });
    fake.script({ kind: 'workflow' });
    expect(((await (await chat('hi')).json()) as Ev).code).toBe('not_chat_app');
  });

  it('uploads a file (201), lets only the same user reference it, and rejects too large / missing files', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 3]);
    const upload = (data: Buffer, user = USER, base = fake.baseUrl, field = 'file'): Promise<Response> => {
      const form = new FormData();
      form.append(field, new Blob([data], { type: 'image/png' }), '截图.png');
      form.append('user', user);
      return fetch(`${base}/files/upload`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form });
    };
    const res = await upload(png);
    const json = (await res.json()) as Ev;
    expect([res.status, json]).toEqual([201, expect.objectContaining({ name: '截图.png', size: 12, extension: 'png', mime_type: 'image/png' })]);
    expect(fake.uploads[0]?.data.equals(png)).toBe(true);
    expect(fake.requests[0]?.body).toMatchObject({ fields: { user: USER }, files: [{ field: 'file', filename: '截图.png', size: 12 }] });
    const image = { type: 'image', transfer_method: 'local_file', upload_file_id: json.id };
    expect((await chat('看图', { files: [image] })).status).toBe(200);
    expect((await chat('看图', { files: [image], user: 'other' })).status).toBe(400);
    expect(((await (await upload(png, USER, fake.baseUrl, 'image')).json()) as Ev).code).toBe('no_file_uploaded');

    const small = await startFakeDify({ apiKey: KEY, maxUploadBytes: 8 });
    try {
      const tooBig = await upload(png, USER, small.baseUrl);
      expect([tooBig.status, ((await tooBig.json()) as Ev).code]).toEqual([413, 'file_too_large']);
      expect(small.uploads).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('imagesOnly: 415 for a non-image; scripted upload failures; workflow file inputs must be this user\'s uploads', async () => {
    const strict = await startFakeDify({ apiKey: KEY, imagesOnly: true });
    try {
      const upload = (data: Uint8Array, type: string, name: string, user = USER): Promise<Response> => {
        const form = new FormData();
        form.append('file', new Blob([data], { type }), name);
        form.append('user', user);
        return fetch(`${strict.baseUrl}/files/upload`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form });
      };
      const pdf = await upload(new Uint8Array([0x25, 0x50]), 'application/pdf', 'a.pdf');
      expect([pdf.status, ((await pdf.json()) as Ev).code]).toEqual([415, 'unsupported_file_type']);
      const renamed = await upload(new Uint8Array([1]), 'image/png', 'a.exe');
      expect(renamed.status).toBe(415);

      strict.scriptUploads({ kind: 'status', status: 503 }, { kind: 'hang' });
      const unavailable = await upload(new Uint8Array([1]), 'image/png', 'a.png');
      expect([unavailable.status, ((await unavailable.json()) as Ev).code]).toEqual([503, 'service_unavailable']);
      // hang: no answer at all; the upload only ends when the fake closes its sockets
      const hung = upload(new Uint8Array([1]), 'image/png', 'a.png').catch((e: unknown) => e);
      await strict.waitForRequests(4);
      await sleep(30);
      await strict.close();
      expect(await hung).toBeInstanceOf(Error);
      expect(strict.uploads).toEqual([]);
    } finally {
      await strict.close();
    }

    const form = new FormData();
    form.append('file', new Blob([new Uint8Array([1, 2])], { type: 'image/jpeg' }), 'p.jpg');
    form.append('user', USER);
    const id = ((await (await fetch(`${fake.baseUrl}/files/upload`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form })).json()) as Ev).id;
    const file = { type: 'image', transfer_method: 'local_file', upload_file_id: id };
    expect((await run({ query: 'q', photos: [file] })).status).toBe(200);
    expect((await run({ query: 'q', photo: file })).status).toBe(200);
    const other = await run({ query: 'q', photos: [file] }, { user: 'someone-else' });
    expect([other.status, ((await other.json()) as Ev)]).toEqual([400, expect.objectContaining({ code: 'invalid_param', message: expect.stringContaining('inputs.photos[0]') })]);
    const unknown = await run({ query: 'q' }, { files: [{ ...file, upload_file_id: 'nope' }] });
    expect([unknown.status, ((await unknown.json()) as Ev).code]).toEqual([400, 'invalid_param']);
  });
});
