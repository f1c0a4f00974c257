/**
 * Customer images through each adapter (docs/providers.md §1–§4 "Images", §6): what every provider receives over
 * real loopback HTTP, what the stored state keeps (never the bytes), upload error mapping and retries. The
 * provider-neutral part (bytes arrive once, the next turn does not resend them) is in contract.test.ts.
 */
import axios from 'axios';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../src/config-agents.js';
import { createAdapter } from '../../src/llm/create-adapter.js';
import { createCozeAdapter } from '../../src/llm/coze.js';
import { createDifyAdapter, type DifyOptions } from '../../src/llm/dify.js';
import { createEchoAdapter } from '../../src/llm/echo.js';
import { createOllamaAdapter } from '../../src/llm/ollama.js';
import { createOpenAiAdapter, type OpenAiOptions } from '../../src/llm/openai.js';
import { runLlm } from '../../src/llm/run.js';
import type { ImageInput } from '../../src/llm/types.js';
import { startFakeCoze, type FakeCoze } from '../fakes/coze.js';
import { startFakeDify, type FakeDify } from '../fakes/dify.js';
import { startFakeOllama, type FakeOllama } from '../fakes/ollama.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import {
  COZE_BOT, COZE_TOKEN, DIFY_KEY, failure, imageReq, never, OLLAMA_MODEL, OPENAI_KEY, OPENAI_MODEL, png, PNG_1X1, req, sleep, SYSTEM, until, USER_ID,
} from './contract-drivers.js';

const Q = '这个多少钱？';
const B64 = PNG_1X1.toString('base64');
const DATA_URL = `data:image/png;base64,${B64}`;
/** A second, different image: a real JPEG start (SOI + JFIF APP0), enough for the providers' MIME/extension checks. */
const JPEG: ImageInput = {
  data: Buffer.from('ffd8ffe000104a46494600010100000100010000ffd9', 'hex'),
  mime: 'image/jpeg',
  name: 'photo.jpg',
};

it('the fixture is a real PNG', () => {
  expect(PNG_1X1.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(PNG_1X1.subarray(12, 16).toString('latin1')).toBe('IHDR');
});

describe('openai-compatible: images as data-URL parts, only with vision', () => {
  let fake: FakeOpenAI;
  beforeEach(async () => {
    fake = await startFakeOpenAI({ apiKey: OPENAI_KEY, model: OPENAI_MODEL });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = (o: Partial<OpenAiOptions> = {}) =>
    createOpenAiAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiKey: OPENAI_KEY, model: OPENAI_MODEL, systemPrompt: SYSTEM, vision: true, ...o });

  it('sends a text part then an image_url data URL; history keeps [图片] + text and never the base64', async () => {
    const a = adapter();
    expect(a.acceptsImages).toBe(true);
    const r = await a.reply(imageReq(Q), never());
    const messages = fake.requests[0]?.body.messages;
    expect(messages).toEqual([
      { role: 'system', content: SYSTEM },
      { role: 'user', content: [{ type: 'text', text: Q }, { type: 'image_url', image_url: { url: DATA_URL } }] },
    ]);
    expect(fake.requests[0]?.images).toEqual([{ message: 1, mime: 'image/png', data: PNG_1X1, url: null }]);
    expect(r.text).toBe(`AI:${Q}`);
    expect(r.state).toEqual({ history: [{ role: 'user', content: `[图片]${Q}` }, { role: 'assistant', content: `AI:${Q}` }] });
    expect(JSON.stringify(r.state)).not.toContain(B64.slice(0, 16));

    await a.reply(req('好的', r.state), never());
    const next = fake.requests[1]?.body.messages;
    expect(next).toEqual([
      { role: 'system', content: SYSTEM },
      { role: 'user', content: `[图片]${Q}` },
      { role: 'assistant', content: `AI:${Q}` },
      { role: 'user', content: '好的' },
    ]);
    expect(fake.requests[1]?.images).toEqual([]);
  });

  it('an image without text: image parts only (no empty text part), one per image, in order; one mark per image', async () => {
    const r = await adapter().reply(imageReq('', [png(), JPEG]), never());
    expect(fake.requests[0]?.body.messages.at(-1)).toEqual({
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url: DATA_URL } },
        { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${JPEG.data.toString('base64')}` } },
      ],
    });
    expect(fake.requests[0]?.images.map((i) => i.data)).toEqual([PNG_1X1, JPEG.data]);
    expect(r.state).toEqual({ history: [{ role: 'user', content: '[图片][图片]' }, { role: 'assistant', content: 'AI:' }] });
  });

  it('a turn without images keeps content a plain string', async () => {
    await adapter().reply({ ...req(Q), images: [] }, never());
    expect(fake.requests[0]?.body.messages.at(-1)).toEqual({ role: 'user', content: Q });
  });

  it('vision off (or not given): acceptsImages false, and images given anyway are refused before any request', async () => {
    for (const a of [adapter({ vision: false }), adapter({ vision: undefined })]) {
      expect(a.acceptsImages).toBe(false);
      const e = await failure(a.reply(imageReq(Q), never()));
      expect(e).toMatchObject({ kind: 'bad_request', retryable: false });
    }
    expect(fake.requests).toEqual([]);
  });
});

/** The bare fields createAdapter needs for an agent (the common ones are irrelevant to the adapter). */
const common = { name: 'a', systemPrompt: null, timeoutMs: 1000, replyOnTimeout: 't', replyOnError: 'e', welcome: null, idleMs: 30_000, maxConcurrency: 1 };

it('createAdapter: acceptsImages follows the openai agent vision flag; dify, coze, ollama true; echo false', () => {
  const openai = (vision: boolean): AgentConfig => ({ ...common, provider: 'openai', baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'k', model: 'm', vision });
  expect(createAdapter(openai(true)).acceptsImages).toBe(true);
  expect(createAdapter(openai(false)).acceptsImages).toBe(false);
  const dify: AgentConfig = { ...common, provider: 'dify', baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'k', mode: 'chat', inputKey: 'query', outputKey: 'text' };
  const coze: AgentConfig = { ...common, provider: 'coze', baseUrl: 'http://127.0.0.1:1', apiToken: 't', botId: 'b' };
  const ollama: AgentConfig = { ...common, provider: 'ollama', baseUrl: 'http://127.0.0.1:1', model: 'm', keepAlive: null };
  for (const a of [dify, coze, ollama]) expect(createAdapter(a).acceptsImages).toBe(true);
  expect(createAdapter({ ...common, provider: 'echo' }).acceptsImages).toBe(false);
  expect(createEchoAdapter().acceptsImages).toBe(false);
});

describe('dify: upload first, then local_file references for the same user', () => {
  let fake: FakeDify;
  beforeEach(async () => {
    fake = await startFakeDify({ apiKey: DIFY_KEY, imagesOnly: true });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = (o: Partial<DifyOptions> = {}) => createDifyAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiKey: DIFY_KEY, ...o });
  const localFile = (id: string | undefined) => ({ type: 'image', transfer_method: 'local_file', upload_file_id: id });

  it('POST /files/upload (multipart file + user, the key), then chat-messages with files naming the id', async () => {
    const a = adapter();
    expect(a.acceptsImages).toBe(true);
    const r = await a.reply(imageReq(Q), never());
    expect(r.text).toBe(`Dify:${Q}`);
    const [up, chat] = fake.requests;
    expect(up).toMatchObject({ method: 'POST', path: '/v1/files/upload' });
    expect(up?.headers.authorization).toBe(`Bearer ${DIFY_KEY}`);
    expect(up?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(up?.body).toEqual({ fields: { user: USER_ID }, files: [{ field: 'file', filename: 'image.png', contentType: 'image/png', size: PNG_1X1.length }] });
    expect(fake.uploads).toMatchObject([{ user: USER_ID, name: 'image.png', mimeType: 'image/png', extension: 'png', size: PNG_1X1.length }]);
    expect(fake.uploads[0]?.data).toEqual(PNG_1X1);
    expect(chat).toMatchObject({ method: 'POST', path: '/v1/chat-messages' });
    expect(chat?.body).toMatchObject({ query: Q, user: USER_ID, files: [localFile(fake.uploads[0]?.id)] });
    expect(fake.conversationsOf(USER_ID)[0]?.turns[0]?.files).toEqual([localFile(fake.uploads[0]?.id)]);
    expect(JSON.stringify(r.state)).not.toContain(B64.slice(0, 16));
  });

  it('several images: one upload each, in order; an image without text asks [图片]', async () => {
    await adapter().reply(imageReq('', [png(), JPEG]), never());
    expect(fake.uploads.map((u) => [u.name, u.mimeType])).toEqual([['image.png', 'image/png'], ['photo.jpg', 'image/jpeg']]);
    expect(fake.requests[2]?.body).toMatchObject({ query: '[图片]', files: fake.uploads.map((u) => localFile(u.id)) });
  });

  it('a forgotten conversation: the retry without it reuses the uploads (one upload, two chat requests)', async () => {
    const a = adapter();
    const r1 = await a.reply(req('你好'), never());
    fake.expireConversation(String(r1.state?.conversationId));
    const r2 = await a.reply(imageReq(Q, [png()], r1.state), never());
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/chat-messages', '/v1/files/upload', '/v1/chat-messages', '/v1/chat-messages']);
    expect(fake.uploads).toHaveLength(1);
    expect(fake.requests[2]?.body.files).toEqual([localFile(fake.uploads[0]?.id)]);
    expect(fake.requests[3]?.body.files).toEqual([localFile(fake.uploads[0]?.id)]);
    expect(r2.state).toEqual({ conversationId: fake.conversationsOf(USER_ID).at(-1)?.id });
  });

  it('413 file_too_large → bad_request with the code, not retryable: runLlm asks once and no chat is sent', async () => {
    const small = await startFakeDify({ apiKey: DIFY_KEY, maxUploadBytes: 16 });
    try {
      const a = createDifyAdapter({ http: axios.create({ baseURL: small.baseUrl }), apiKey: DIFY_KEY });
      const e = await failure(a.reply(imageReq(Q), never()));
      expect(e).toMatchObject({ kind: 'bad_request', retryable: false, status: 413, partialText: '' });
      expect(e.options.code).toBe('file_too_large');
      expect(e.message).toContain('/files/upload');
      expect(e.message).not.toContain(B64.slice(0, 16));
      const out = await runLlm(a, imageReq(Q), { timeoutMs: 5000, signal: never(), minBackoffMs: 10 });
      expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
      expect(small.requests.map((r) => r.path)).toEqual(['/v1/files/upload', '/v1/files/upload']);
      expect(small.uploads).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('415 unsupported_file_type and 400 no_file_uploaded → bad_request, not retryable', async () => {
    const pdf: ImageInput = { data: Buffer.from('%PDF-1.4\n'), mime: 'application/pdf', name: 'a.pdf' };
    const e = await failure(adapter().reply(imageReq(Q, [pdf]), never()));
    expect(e).toMatchObject({ kind: 'bad_request', retryable: false, status: 415 });
    expect(e.options.code).toBe('unsupported_file_type');
    fake.scriptUploads({ kind: 'status', status: 400, code: 'no_file_uploaded', message: 'Please upload your file.' });
    expect(await failure(adapter().reply(imageReq(Q), never()))).toMatchObject({ kind: 'bad_request', retryable: false, status: 400 });
    expect(fake.requests.some((r) => r.path === '/v1/chat-messages')).toBe(false);
  });

  it('a 5xx upload is retryable: runLlm uploads again on the next attempt and succeeds', async () => {
    fake.scriptUploads({ kind: 'status', status: 503 });
    const a = adapter();
    expect(await failure(a.reply(imageReq(Q), never()))).toMatchObject({ kind: 'upstream', retryable: true, status: 503 });
    fake.scriptUploads({ kind: 'status', status: 500 });
    const out = await runLlm(a, imageReq(Q), { timeoutMs: 5000, signal: never(), minBackoffMs: 10 });
    expect(out).toMatchObject({ ok: true, attempts: 2, result: { text: `Dify:${Q}` } });
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/files/upload', '/v1/files/upload', '/v1/files/upload', '/v1/chat-messages']);
    expect(fake.uploads).toHaveLength(1);
  });

  it('a connection refused during the upload is a retryable upstream error', async () => {
    const closed = await startFakeDify({ apiKey: DIFY_KEY });
    const baseURL = closed.baseUrl;
    await closed.close();
    const e = await failure(createDifyAdapter({ http: axios.create({ baseURL }), apiKey: DIFY_KEY }).reply(imageReq(Q), never()));
    expect(e).toMatchObject({ kind: 'upstream', retryable: true });
  });

  it('the caller aborting during a stuck upload → aborted at once, the upload socket closes', async () => {
    fake.scriptUploads({ kind: 'hang' });
    const ac = new AbortController();
    const p = adapter().reply(imageReq(Q), ac.signal);
    await fake.waitForRequests(1);
    await sleep(50);
    ac.abort();
    expect(await failure(p)).toMatchObject({ kind: 'aborted', retryable: false });
    await until(() => fake.requests[0]?.closedByClient === true);
    expect(fake.requests[0]?.closedByClient).toBe(true);
    expect(fake.requests).toHaveLength(1);
  });

  it('workflow mode: files at the top level (sys.files) and, with imageInputKey, inside inputs too', async () => {
    fake.script({ kind: 'workflow', outputs: { text: '已收到图片' } }, { kind: 'workflow', outputs: { text: '已收到图片' } });
    const r = await adapter({ mode: 'workflow' }).reply(imageReq(Q), never());
    expect(r).toMatchObject({ text: '已收到图片', state: null });
    const run1 = fake.requests[1];
    expect(run1).toMatchObject({ path: '/v1/workflows/run' });
    expect(run1?.body).toEqual({ inputs: { query: Q }, response_mode: 'streaming', user: USER_ID, files: [localFile(fake.uploads[0]?.id)] });

    await adapter({ mode: 'workflow', inputKey: 'question', imageInputKey: 'photos' }).reply(imageReq(''), never());
    const file = localFile(fake.uploads[1]?.id);
    expect(fake.requests[3]?.body).toEqual({ inputs: { question: '[图片]', photos: [file] }, response_mode: 'streaming', user: USER_ID, files: [file] });
  });
});

describe('coze: upload, then an object_string user turn', () => {
  let fake: FakeCoze;
  beforeEach(async () => {
    fake = await startFakeCoze({ token: COZE_TOKEN, botId: COZE_BOT });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = () => createCozeAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiToken: COZE_TOKEN, botId: COZE_BOT });

  it('POST /v1/files/upload (multipart file, the token) → data.id; content is the JSON string of text + image parts', async () => {
    const a = adapter();
    expect(a.acceptsImages).toBe(true);
    const r = await a.reply(imageReq(Q), never());
    expect(r.text).toBe(`Coze:${Q}`);
    const [up, chat] = fake.requests;
    expect(up).toMatchObject({ method: 'POST', path: '/v1/files/upload' });
    expect(up?.headers.authorization).toBe(`Bearer ${COZE_TOKEN}`);
    expect(up?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(up?.body.files).toMatchObject([{ name: 'file', fileName: 'image.png', contentType: 'image/png' }]);
    const [file] = [...fake.files.values()];
    expect(file?.data).toEqual(PNG_1X1);
    const turn = chat?.body.additional_messages[0];
    expect(turn).toMatchObject({ role: 'user', content_type: 'object_string', type: 'question' });
    expect(typeof turn.content).toBe('string');
    expect(JSON.parse(turn.content)).toEqual([{ type: 'text', text: Q }, { type: 'image', file_id: file?.id }]);
    expect(JSON.stringify(r.state)).not.toContain(B64.slice(0, 16));
  });

  it('an image without text: image parts only; several images in order', async () => {
    await adapter().reply(imageReq('', [png(), JPEG]), never());
    const ids = [...fake.files.keys()];
    expect(ids).toHaveLength(2);
    expect(JSON.parse(fake.requests[2]?.body.additional_messages[0].content)).toEqual(ids.map((file_id) => ({ type: 'image', file_id })));
  });

  it('a forgotten conversation: the retry reuses the uploaded file id', async () => {
    const a = adapter();
    const r1 = await a.reply(req('你好'), never());
    fake.expireConversation(String(r1.state?.conversationId));
    const r2 = await a.reply(imageReq(Q, [png()], r1.state), never());
    expect(fake.requests.map((r) => r.path)).toEqual(['/v3/chat', '/v1/files/upload', '/v3/chat', '/v3/chat']);
    expect(fake.files.size).toBe(1);
    expect(fake.requests[3]?.body.additional_messages[0].content).toBe(fake.requests[2]?.body.additional_messages[0].content);
    expect(r2.state?.conversationId).not.toBe(r1.state?.conversationId);
  });

  it('upload failures: envelope 4000 → bad_request; HTTP 500 → retryable upstream; 4200 is not "conversation gone"', async () => {
    fake.scriptUploads({ kind: 'envelope', code: 4000, msg: 'file type not supported' }, { kind: 'status', status: 500 }, { kind: 'envelope', code: 4200, msg: 'not found' });
    const e1 = await failure(adapter().reply(imageReq(Q), never()));
    expect(e1).toMatchObject({ kind: 'bad_request', retryable: false });
    expect(e1.options.code).toBe('4000');
    expect(e1.message).toContain('/v1/files/upload');
    expect(await failure(adapter().reply(imageReq(Q), never()))).toMatchObject({ kind: 'upstream', retryable: true, status: 500 });
    const e3 = await failure(adapter().reply(imageReq(Q, [png()], { conversationId: '7400000000000000009' }), never()));
    expect(e3).toMatchObject({ kind: 'not_found', retryable: false });
    expect(e3.options.code).toBe('4200');
    expect(fake.requests.every((r) => r.path === '/v1/files/upload')).toBe(true);
  });
});

describe('ollama: plain base64 in the user message images', () => {
  let fake: FakeOllama;
  beforeEach(async () => {
    fake = await startFakeOllama({ models: [OLLAMA_MODEL] });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = () => createOllamaAdapter({ http: axios.create({ baseURL: fake.baseUrl }), model: OLLAMA_MODEL, systemPrompt: SYSTEM });

  it('sends images: [base64] without a data: prefix; history keeps [图片] + text, never the bytes', async () => {
    const a = adapter();
    expect(a.acceptsImages).toBe(true);
    const r = await a.reply(imageReq(Q, [png(), JPEG]), never());
    expect(fake.requests[0]?.body.messages.at(-1)).toEqual({ role: 'user', content: Q, images: [B64, JPEG.data.toString('base64')] });
    expect(fake.requests[0]?.images).toEqual([{ message: 1, data: PNG_1X1 }, { message: 1, data: JPEG.data }]);
    expect(r.state).toEqual({ history: [{ role: 'user', content: `[图片][图片]${Q}` }, { role: 'assistant', content: `Ollama:${Q}` }] });
    await a.reply(req('好的', r.state), never());
    expect(JSON.stringify(fake.requests[1]?.body)).not.toContain(B64.slice(0, 16));
    expect(fake.requests[1]?.images).toEqual([]);
  });

  it('a turn without images sends no images key', async () => {
    await adapter().reply({ ...req(Q), images: [] }, never());
    expect(fake.requests[0]?.body.messages.at(-1)).toEqual({ role: 'user', content: Q });
  });
});
