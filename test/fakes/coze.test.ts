import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FOLLOWUPS, startFakeCoze, type FakeCoze } from './coze.js';

const TOKEN = 'pat_test_123';
const BOT = '7380000000000000001';
let fake: FakeCoze;

beforeEach(async () => {
  fake = await startFakeCoze({ token: TOKEN, botId: BOT });
});
afterEach(async () => {
  await fake.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const userTurn = (content: string): Record<string, unknown> => ({ role: 'user', content, content_type: 'text' });
const chatBody = (content: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  bot_id: BOT,
  user_id: 'kf:wk1:wm_user_1',
  stream: true,
  auto_save_history: true,
  additional_messages: [userTurn(content)],
  ...extra,
});

function post(path: string, body: unknown, init: { token?: string; signal?: AbortSignal } = {}): Promise<Response> {
  return fetch(`${fake.baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${init.token ?? TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: init.signal,
  });
}
const chat = (body: unknown, conversationId?: string, init: { token?: string; signal?: AbortSignal } = {}): Promise<Response> =>
  post(`/v3/chat${conversationId ? `?conversation_id=${conversationId}` : ''}`, body, init);

interface Frame {
  event: string;
  data: string;
}
/** Reads the raw SSE text and splits it by hand, insisting on Coze's exact `event:x\ndata:y` (no space) frames. */
async function readFrames(res: Response): Promise<{ frames: Frame[]; raw: string; reads: string[] }> {
  const decoder = new TextDecoder();
  const reads: string[] = [];
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) reads.push(decoder.decode(bytes, { stream: true }));
  const raw = reads.join('');
  const blocks = raw.replace(/\r\n/g, '\n').split('\n\n');
  expect(blocks.pop()).toBe(''); // the body ends on a frame boundary
  const frames = blocks.map((block) => {
    const m = /^event:(\S+)\ndata:(\S.*)$/.exec(block);
    expect(m, `frame ${JSON.stringify(block)}`).not.toBeNull();
    return { event: m?.[1] ?? '', data: m?.[2] ?? '' };
  });
  return { frames, raw, reads };
}
const json = (frames: Frame[], event: string): Any[] => frames.filter((f) => f.event === event).map((f) => JSON.parse(f.data));
const answerText = (frames: Frame[]): string => json(frames, 'conversation.message.delta').filter((m) => m.type === 'answer').map((m) => m.content).join('');

describe('fake Coze /v3/chat streaming', () => {
  it('streams the full event sequence with no space after the colon, split across writes, and stores the turns', async () => {
    const user = '你好，请问营业时间？😀👍🏽';
    const res = await chat(chatBody(user));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('x-tt-logid')).toMatch(/^\d{14}[0-9A-F]{20}$/);
    const { frames, raw, reads } = await readFrames(res);
    expect(raw.startsWith('event:conversation.chat.created\ndata:{')).toBe(true);
    expect(raw).not.toMatch(/(event|data): /);
    expect(raw.endsWith('event:done\ndata:"[DONE]"\n\n')).toBe(true);
    expect(reads.some((r) => !r.endsWith('\n\n'))).toBe(true); // one frame went out in two writes
    const events = frames.map((f) => f.event);
    expect(events.slice(0, 3)).toEqual(['conversation.chat.created', 'conversation.chat.in_progress', 'conversation.message.delta']);
    expect(events.slice(-5)).toEqual([...Array(3).fill('conversation.message.completed'), 'conversation.chat.completed', 'done']);
    expect(answerText(frames)).toBe(`Coze:${user}`);
    const [created] = json(frames, 'conversation.chat.created');
    const delta = json(frames, 'conversation.message.delta')[0];
    expect(delta).toMatchObject({ conversation_id: created.conversation_id, bot_id: BOT, chat_id: created.id, role: 'assistant', type: 'answer', content_type: 'text' });
    const completed = json(frames, 'conversation.message.completed');
    expect(completed.map((m) => m.type)).toEqual(['answer', 'verbose', 'follow_up', 'follow_up']);
    expect(completed[0]).toMatchObject({ id: delta.id, content: `Coze:${user}` });
    expect(JSON.parse(completed[1].content)).toMatchObject({ msg_type: 'generate_answer_finish', data: '' });
    expect(completed.slice(2).map((m) => m.content)).toEqual(FOLLOWUPS);
    expect(FOLLOWUPS.every((q) => q.includes('FOLLOWUP-SECRET'))).toBe(true);
    const done = json(frames, 'conversation.chat.completed')[0];
    expect(done).toMatchObject({ id: created.id, status: 'completed', usage: { input_count: Array.from(user).length } });
    expect(done.usage.token_count).toBe(done.usage.input_count + done.usage.output_count);
    expect(fake.conversations.get(created.conversation_id)?.turns).toEqual([userTurn(user), { role: 'assistant', content: `Coze:${user}`, content_type: 'text' }]);
    expect(fake.conversations.get(created.conversation_id)?.userId).toBe('kf:wk1:wm_user_1');
  });

  it('keeps continuity through the query conversation_id, scopes it to its user, ignores a body conversation_id', async () => {
    const first = json((await readFrames(await chat(chatBody('一')))).frames, 'conversation.chat.created')[0].conversation_id as string;
    const { frames } = await readFrames(await chat(chatBody('二'), first));
    expect(json(frames, 'conversation.chat.completed')[0]).toMatchObject({ conversation_id: first, usage: { input_count: 1 + 'Coze:一'.length + 1 } });
    expect(fake.conversations.get(first)?.turns.map((t) => t.content)).toEqual(['一', 'Coze:一', '二', 'Coze:二']);
    expect(await (await chat(chatBody('三', { user_id: 'someone-else' }), first)).json()).toMatchObject({ code: 4101 });
    const other = await readFrames(await chat(chatBody('四', { conversation_id: first })));
    expect(json(other.frames, 'conversation.chat.created')[0].conversation_id).not.toBe(first);
    await fake.waitForRequests(4);
    expect(fake.requests[1]?.query).toEqual({ conversation_id: first });
  });

  it('sends several answer messages, reasoning first, CRLF framing, and omits done when asked', async () => {
    fake.script({ kind: 'answer', answers: ['第一段回答', '第二段'], reasoning: '先想一想', chunkSize: 2, crlf: true, noDone: true });
    const { frames, raw } = await readFrames(await chat(chatBody('hi')));
    expect(raw).toContain('\r\n\r\n');
    expect(raw.replace(/\r\n/g, '')).not.toContain('\n');
    const deltas = json(frames, 'conversation.message.delta');
    expect(deltas.map((d) => (d.reasoning_content ? 'r' : 'c')).join('')).toMatch(/^r+c+$/);
    expect(deltas.filter((d) => d.reasoning_content).every((d) => d.content === '')).toBe(true);
    expect(deltas.map((d) => d.reasoning_content ?? '').join('')).toBe('先想一想');
    const answers = json(frames, 'conversation.message.completed').filter((m) => m.type === 'answer');
    expect(answers.map((m) => m.content)).toEqual(['第一段回答', '第二段']);
    expect(new Set(deltas.map((d) => d.id))).toEqual(new Set(answers.map((m) => m.id)));
    expect(frames.at(-1)?.event).toBe('conversation.chat.completed');
  });

  it('answers > 64 KB intact, after firstByteDelayMs', async () => {
    const text = '长'.repeat(40_000) + 'end';
    fake.script({ kind: 'answer', text, chunkSize: 5000, firstByteDelayMs: 120 });
    const t0 = Date.now();
    const res = await chat(chatBody('long'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    const { frames } = await readFrames(res);
    expect(answerText(frames)).toBe(text);
  });
});

describe('fake Coze failures', () => {
  it('answers auth and body problems in an HTTP 200 envelope, and records every request', async () => {
    const cases: [unknown, number, string | undefined][] = [
      [chatBody('x'), 4100, 'wrong'],
      [chatBody('x', { bot_id: '1' }), 4000, undefined],
      [chatBody('x', { user_id: undefined }), 4000, undefined],
      [chatBody('x', { stream: false }), 4000, undefined],
      [chatBody('x', { additional_messages: [userTurn('q'), { role: 'assistant', content: 'a', content_type: 'text' }] }), 4000, undefined],
      [chatBody('x', { additional_messages: [{ role: 'user', content: '[{"type":"image","file_id":"999"}]', content_type: 'object_string' }] }), 4000, undefined],
    ];
    for (const [body, code, token] of cases) {
      const res = await chat(body, undefined, { token });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toMatchObject({ code, msg: expect.any(String), detail: { logid: res.headers.get('x-tt-logid') } });
    }
    expect(await (await chat(chatBody('x'), undefined, { token: 'wrong' })).json()).toMatchObject({ msg: 'authentication failed' });
    await fake.waitForRequests(7);
    expect(fake.requests[0]?.headers.authorization).toBe('Bearer wrong');
    expect(fake.conversations.size).toBe(0);
  });

  it('expired or unknown conversation ids get code 4200 under HTTP 200', async () => {
    const created = (await (await post('/v1/conversation/create', { bot_id: BOT })).json()) as Any;
    expect(created).toMatchObject({ code: 0, data: { id: expect.stringMatching(/^\d{19}$/) } });
    const id = created.data.id as string;
    expect(fake.conversations.get(id)?.userId).toBeNull();
    await readFrames(await chat(chatBody('hi'), id));
    expect(fake.conversations.get(id)?.userId).toBe('kf:wk1:wm_user_1');
    fake.expireConversation(id);
    for (const cid of [id, '7999999999999999999']) {
      const res = await chat(chatBody('again'), cid);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ code: 4200, msg: 'conversation not found' });
    }
  });

  it('clear empties the turns and starts a new section', async () => {
    const id = json((await readFrames(await chat(chatBody('hi')))).frames, 'conversation.chat.created')[0].conversation_id as string;
    const section = fake.conversations.get(id)?.sectionId;
    expect(await (await post(`/v1/conversations/${id}/clear`, {})).json()).toMatchObject({ code: 0, data: { conversation_id: id } });
    expect(fake.conversations.get(id)?.turns).toEqual([]);
    expect(fake.conversations.get(id)?.sectionId).not.toBe(section);
  });

  it('scripted envelope and HTTP status', async () => {
    fake.script({ kind: 'envelope', code: 4013, msg: 'rate limited' }, { kind: 'status', status: 502, body: 'Bad Gateway' }, { kind: 'status', status: 500 });
    const env = await chat(chatBody('x'));
    expect([env.status, env.headers.get('content-type')]).toEqual([200, 'application/json']);
    expect(await env.json()).toMatchObject({ code: 4013, msg: 'rate limited' });
    const bad = await chat(chatBody('x'));
    expect([bad.status, await bad.text()]).toEqual([502, 'Bad Gateway']);
    const ise = await chat(chatBody('x'));
    expect([ise.status, ((await ise.json()) as Any).code]).toEqual([500, 5000]);
  });

  it('chat-failed sends last_error then done; requires-action sends required_action then done', async () => {
    fake.script({ kind: 'chat-failed', afterDeltas: 2, code: 4028, msg: 'quota exceeded' }, { kind: 'requires-action' });
    const { frames } = await readFrames(await chat(chatBody('一二三四五六七八九十')));
    expect(answerText(frames)).toBe('Coze:一二三'); // two 4-code-point deltas
    expect(frames.slice(-2).map((f) => f.event)).toEqual(['conversation.chat.failed', 'done']);
    expect(json(frames, 'conversation.chat.failed')[0]).toMatchObject({ status: 'failed', last_error: { code: 4028, msg: 'quota exceeded' } });
    expect(json(frames, 'conversation.chat.completed')).toEqual([]);
    const ra = (await readFrames(await chat(chatBody('天气')))).frames;
    expect(ra.map((f) => f.event).slice(-3)).toEqual(['conversation.message.completed', 'conversation.chat.requires_action', 'done']);
    expect(json(ra, 'conversation.chat.requires_action')[0]).toMatchObject({ status: 'requires_action', required_action: { type: 'submit_tool_outputs' } });
    expect(answerText(ra)).toBe('');
  });

  it('error-event ends the stream with data {} (or {code,msg}) and no done', async () => {
    fake.script({ kind: 'error-event', afterDeltas: 1 }, { kind: 'error-event', afterDeltas: 0, code: 5000, msg: 'boom' });
    const { frames, raw } = await readFrames(await chat(chatBody('hello there')));
    expect(raw.endsWith('event:error\ndata:{}\n\n')).toBe(true);
    expect(frames.map((f) => f.event)).not.toContain('done');
    expect(answerText(frames)).toBe('Coze');
    const second = (await readFrames(await chat(chatBody('hello')))).frames;
    expect(json(second, 'error')).toEqual([{ code: 5000, msg: 'boom' }]);
  });

  it('truncate ends cleanly without chat.completed or done; drop destroys the socket', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 2 }, { kind: 'drop', afterDeltas: 1 });
    const { frames } = await readFrames(await chat(chatBody('一二三四五六七八九十')));
    expect(frames.map((f) => f.event)).not.toContain('conversation.chat.completed');
    expect(frames.map((f) => f.event)).not.toContain('done');
    expect(answerText(frames)).toBe('Coze:一二三'); // two 4-code-point deltas
    await expect(readFrames(await chat(chatBody('hello there')))).rejects.toThrow();
  });

  it('invalid-json sends one cut-off frame, then the rest of a normal stream', async () => {
    fake.script({ kind: 'invalid-json', afterDeltas: 1 });
    const { frames } = await readFrames(await chat(chatBody('hello there')));
    const bad = frames.filter((f) => {
      try {
        return void JSON.parse(f.data);
      } catch {
        return true;
      }
    });
    expect(bad).toHaveLength(1);
    expect(frames.indexOf(bad[0] as Frame)).toBe(3);
    const ok = frames.filter((f) => f !== bad[0]);
    expect(answerText(ok)).toBe('Coze:hello there');
    expect(frames.at(-1)?.event).toBe('done');
  });

  it('hang sends headers then silence and records the client aborting; close() does not hang', async () => {
    fake.setDefault({ kind: 'hang' });
    const ac = new AbortController();
    const res = await chat(chatBody('hi'), undefined, { signal: ac.signal });
    expect(res.status).toBe(200);
    ac.abort();
    const deadline = Date.now() + 2000;
    while (!fake.requests[0]?.closedByClient && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fake.requests[0]?.closedByClient).toBe(true);
    const reading = readFrames(await chat(chatBody('hi'))).catch((e: unknown) => e);
    await fake.close();
    expect(await reading).toBeInstanceOf(Error);
    expect(fake.requests[1]?.closedByClient).toBe(false);
  });
});

describe('fake Coze files', () => {
  it('uploads multipart files and accepts them in object_string content', async () => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array([0xff, 0xd8, 0xff, 0x00, 0x01])], { type: 'image/jpeg' }), '图.jpg');
    const res = await fetch(`${fake.baseUrl}/v1/files/upload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
    const up = (await res.json()) as Any;
    expect(up).toMatchObject({ code: 0, data: { id: expect.stringMatching(/^\d{19}$/), bytes: 5, file_name: '图.jpg' } });
    expect(fake.files.get(up.data.id)?.data).toEqual(Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]));
    expect(fake.requests[0]?.body.files[0]).toMatchObject({ name: 'file', fileName: '图.jpg', contentType: 'image/jpeg' });
    const content = JSON.stringify([{ type: 'text', text: '看看这张图' }, { type: 'image', file_id: up.data.id }]);
    const { frames } = await readFrames(await chat(chatBody('', { additional_messages: [{ role: 'user', content, content_type: 'object_string' }] })));
    expect(answerText(frames)).toBe('Coze:看看这张图');
    const empty = await fetch(`${fake.baseUrl}/v1/files/upload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: new FormData() });
    expect(await empty.json()).toMatchObject({ code: 4000 });
  });

  it('answers scripted upload failures, then accepts again', async () => {
    const upload = (): Promise<Response> => {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' }), 'a.png');
      return fetch(`${fake.baseUrl}/v1/files/upload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
    };
    fake.scriptUploads({ kind: 'envelope', code: 4000, msg: 'file type not supported' }, { kind: 'status', status: 502 });
    const env = await upload();
    expect([env.status, await env.json()]).toEqual([200, expect.objectContaining({ code: 4000, msg: 'file type not supported' })]);
    const bad = await upload();
    expect([bad.status, await bad.json()]).toEqual([502, { code: 5000, msg: 'fake coze HTTP 502' }]);
    expect(await (await upload()).json()).toMatchObject({ code: 0, data: { bytes: 3, file_name: 'a.png' } });
    expect(fake.files.size).toBe(1);
  });

  it('refuses malformed object_string parts with 4000', async () => {
    const turn = (parts: unknown): Record<string, unknown> => chatBody('', { additional_messages: [{ role: 'user', content: JSON.stringify(parts), content_type: 'object_string' }] });
    for (const parts of [[], {}, [{ type: 'video', file_id: '1' }], [{ type: 'text' }], [{ type: 'image' }], ['text']]) {
      expect(await (await chat(turn(parts))).json()).toMatchObject({ code: 4000 });
    }
    const { frames } = await readFrames(await chat(turn([{ type: 'text', text: '看' }, { type: 'image', file_url: 'https://example.com/a.png' }])));
    expect(answerText(frames)).toBe('Coze:看');
  });
});
