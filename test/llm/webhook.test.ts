/**
 * The webhook agent's own contract (docs/providers.md §8) against its protocol-faithful fake: the exact
 * request, how `state` travels, what counts as a failure. What every adapter shares (timeouts, cancel, statuses,
 * onText snapshots, history) is in contract.test.ts.
 */
import { createServer } from 'node:http';
import axios from 'axios';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../src/config-agents.js';
import { createAdapter } from '../../src/llm/create-adapter.js';
import type { ChatTurn, ConversationState, ReplyRequest } from '../../src/llm/types.js';
import { createWebhookAdapter, WEBHOOK_STATE_MAX_BYTES } from '../../src/llm/webhook.js';
import { startFakeWebhook, type FakeWebhook } from '../fakes/webhook.js';
import { CUSTOMER, failure, imageReq, never, png, PNG_1X1, req } from './contract-drivers.js';

const TOKEN = 'whk_test_secret';
const Q = '你们周末营业吗？';

let fake: FakeWebhook;
beforeEach(async () => {
  fake = await startFakeWebhook({ token: TOKEN });
});
afterEach(async () => {
  await fake.close();
});
const adapter = (o: { token?: string | null; url?: string } = {}) =>
  createWebhookAdapter({ http: axios.create({ baseURL: o.url ?? fake.url }), token: o.token === undefined ? TOKEN : o.token });

describe('webhook: the request', () => {
  it('POSTs JSON {customer, message, state} to the exact URL (path and query kept) with the Bearer token', async () => {
    const r = await adapter().reply(req(Q), never());
    expect(r).toEqual({ text: `Webhook:${Q}`, state: { webhook: { turns: [Q] } }, usage: null, finishReason: 'stop', requestId: 'wh_1' });
    const [sent] = fake.requests;
    expect(sent).toMatchObject({ method: 'POST', url: '/hooks/agent?tenant=t1' });
    expect(sent?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(sent?.headers['content-type']).toMatch(/^application\/json/);
    expect(sent?.headers.accept).toBe('application/json');
    expect(sent?.body).toEqual({ customer: CUSTOMER, message: { type: 'text', text: Q, images: [] }, state: null });
  });

  it('only the four customer fields go out, whatever else the caller put on the object', async () => {
    await adapter().reply({ ...req(Q), customer: { ...CUSTOMER, secret: 'x' } as typeof CUSTOMER }, never());
    expect(fake.requests[0]?.body.customer).toEqual(CUSTOMER);
  });

  it('an image message: type image, each image as {mime, base64} of the exact bytes, the caption (or nothing) as text', async () => {
    await adapter().reply(imageReq('这个多少钱？', [png(), { data: Buffer.from([0xff, 0xd8, 0xff, 0xe0]), mime: 'image/jpeg', name: 'a.jpg' }]), never());
    await adapter().reply(imageReq(''), never());
    const [first, second] = fake.requests;
    expect(first?.body.message).toEqual({
      type: 'image',
      text: '这个多少钱？',
      images: [{ mime: 'image/png', base64: PNG_1X1.toString('base64') }, { mime: 'image/jpeg', base64: '/9j/4A==' }],
    });
    expect(first?.images.map((i) => i.data)).toEqual([PNG_1X1, Buffer.from([0xff, 0xd8, 0xff, 0xe0])]);
    expect(second?.body.message).toMatchObject({ type: 'image', text: '' });
  });

  it('without a token: no Authorization header at all (an open endpoint answers)', async () => {
    const open = await startFakeWebhook({ token: null });
    try {
      await adapter({ token: null, url: open.url }).reply(req(Q), never());
      expect(open.requests[0]?.headers).not.toHaveProperty('authorization');
    } finally {
      await open.close();
    }
  });

  it('a wrong token → the endpoint\'s 401 → auth, not retryable, the token never in the message', async () => {
    const e = await failure(adapter({ token: 'whk_wrong' }).reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'auth', retryable: false, status: 401 });
    expect(e.message).not.toContain('whk_wrong');
  });

  it('a request without a customer is refused before anything is sent', async () => {
    const { customer: _omit, ...bare } = req(Q);
    const e = await failure(adapter().reply(bare, never()));
    expect(e).toMatchObject({ kind: 'bad_request', retryable: false });
    expect(fake.requests).toEqual([]);
  });

  it('a /v1 call: history goes out as sent, message is the last user message, and no state comes back', async () => {
    const history: ChatTurn[] = [{ role: 'user', content: '在吗' }, { role: 'assistant', content: '在的' }];
    const r = await adapter().reply({ ...req(Q), history }, never());
    expect(fake.requests[0]?.body).toEqual({ customer: CUSTOMER, message: { type: 'text', text: Q, images: [] }, state: null, history });
    expect(r.state).toBeNull();
  });
});

describe('webhook: state', () => {
  /** Two turns: the first answers `state`, the second sends back what the adapter returned. */
  async function roundTrip(state: unknown): Promise<{ stored: ConversationState | null; sentBack: unknown }> {
    fake.script({ kind: 'answer', state });
    const a = adapter();
    const r1 = await a.reply(req(Q), never());
    await a.reply(req('再问', r1.state), never());
    return { stored: r1.state, sentBack: fake.requests[1]?.body.state };
  }

  it('any JSON comes back exactly as answered with the next message: object, array, string, number, boolean', async () => {
    for (const state of [{ step: 2, cart: ['A1', { sku: '奶茶', n: 2 }] }, [1, 'two'], '第2步', 0, false]) {
      fake.requests.length = 0;
      expect((await roundTrip(state)).sentBack).toEqual(state);
    }
  });

  it('"state": null clears it: the next message carries null', async () => {
    const { stored, sentBack } = await roundTrip(null);
    expect(stored).toEqual({ webhook: null });
    expect(sentBack).toBeNull();
  });

  it('no "state" key: nothing to store (null), so the bridge keeps the one it had', async () => {
    fake.script({ kind: 'answer', omitState: true });
    expect((await adapter().reply(req(Q, { webhook: { step: 1 } }), never())).state).toBeNull();
    expect(fake.requests[0]?.body.state).toEqual({ step: 1 });
  });

  it('a state another agent left behind (no webhook key) is sent as null', async () => {
    await adapter().reply(req(Q, { conversationId: 'dify-conv' }), never());
    await adapter().reply(req(Q, { history: [{ role: 'user', content: 'x' }] }), never());
    expect(fake.requests.map((r) => r.body.state)).toEqual([null, null]);
  });

  it('a state of exactly 16 KB serialised is accepted; one byte more → protocol, not retryable', async () => {
    const fits = 'x'.repeat(WEBHOOK_STATE_MAX_BYTES - 2); // the quotes make the rest
    fake.script({ kind: 'answer', state: fits }, { kind: 'answer', state: `${fits}x` }, { kind: 'answer', state: `${fits.slice(3)}营` });
    expect((await adapter().reply(req(Q), never())).state).toEqual({ webhook: fits });
    const e = await failure(adapter().reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'protocol', retryable: false });
    expect(e.message).toContain(String(WEBHOOK_STATE_MAX_BYTES));
    // counted in UTF-8 bytes, not characters: one CJK character is 3 bytes
    expect((await adapter().reply(req(Q), never())).state).toEqual({ webhook: `${fits.slice(3)}营` });
  });
});

describe('webhook: failures', () => {
  it.each([
    ['no answer', JSON.stringify({ state: {} })],
    ['a number as answer', JSON.stringify({ answer: 42 })],
    ['an empty answer', JSON.stringify({ answer: '' })],
    ['a blank answer', JSON.stringify({ answer: ' \n ' })],
    ['a JSON array', JSON.stringify([{ answer: 'x' }])],
    ['JSON null', 'null'],
    ['HTML', '<html>SECRET-BODY Bad Gateway</html>'],
  ])('a 200 with %s → protocol, not retryable, without quoting the body', async (_what, body) => {
    fake.script({ kind: 'raw', body });
    const e = await failure(adapter().reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'protocol', retryable: false, partialText: '', status: 200 });
    expect(e.message).not.toContain('SECRET-BODY');
  });

  it.each([
    [400, 'bad_request', false],
    [403, 'auth', false],
    [404, 'not_found', false],
    [422, 'bad_request', false],
    [500, 'upstream', true],
    [502, 'upstream', true],
    [429, 'rate_limit', true],
  ] as const)('HTTP %i → %s, retryable %s, the endpoint\'s error text in the message', async (status, kind, retryable) => {
    fake.script({ kind: 'status', status, body: { error: `agent says ${status}` } });
    const e = await failure(adapter().reply(req(Q), never()));
    expect(e).toMatchObject({ kind, retryable, status, partialText: '' });
    expect(e.message).toContain(`agent says ${status}`);
  });

  it('any 2xx with a JSON answer is an answer (201); a 204 has no body → protocol', async () => {
    fake.script({ kind: 'answer', status: 201, answer: '好的' }, { kind: 'raw', status: 204, body: '' });
    expect((await adapter().reply(req(Q), never())).text).toBe('好的');
    expect(await failure(adapter().reply(req(Q), never()))).toMatchObject({ kind: 'protocol', retryable: false, status: 204 });
  });

  it('a redirect is not followed (the message and the token would go elsewhere) → bad_request with the status', async () => {
    const elsewhere = await startFakeWebhook({ token: null, path: '/moved' });
    try {
      fake.script({ kind: 'redirect', status: 307, location: elsewhere.url });
      const e = await failure(adapter().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'bad_request', retryable: false, status: 307 });
      expect(elsewhere.requests).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });

  it('nothing listening → retryable upstream naming host:port, never the path, the query or the token', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const e = await failure(adapter({ url: `http://127.0.0.1:${port}/hooks/agent?tenant=t1` }).reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'upstream', retryable: true });
    expect(e.message).toContain(`reaching 127.0.0.1:${port}`);
    for (const s of ['/hooks', 'tenant', TOKEN]) expect(e.message).not.toContain(s);
  });

  it('an answer body over 4 MB → protocol, not retryable', async () => {
    fake.script({ kind: 'raw', body: JSON.stringify({ answer: 'x'.repeat(4 * 1024 * 1024) }) });
    expect(await failure(adapter().reply(req(Q), never()))).toMatchObject({ kind: 'protocol', retryable: false });
  });
});

describe('webhook: onText and createAdapter', () => {
  it('onText is called once with the whole answer, a leading think block stripped', async () => {
    fake.script({ kind: 'answer', answer: '<think>x</think>营业到六点。' });
    const seen: string[] = [];
    const r: ReplyRequest = { ...req(Q), onText: (t) => void seen.push(t) };
    expect((await adapter().reply(r, never())).text).toBe('<think>x</think>营业到六点。');
    expect(seen).toEqual(['营业到六点。']);
  });

  it('createAdapter builds it from the agent config: markdown, images, the URL as configured, the token when set', async () => {
    const common = { name: 'a', systemPrompt: null, timeoutMs: 1000, replyOnTimeout: 't', replyOnError: 'e', welcome: null, idleMs: 30_000, maxConcurrency: 1 };
    const agent: AgentConfig = { ...common, provider: 'webhook', url: fake.url, token: TOKEN };
    const a = createAdapter(agent);
    expect(a).toMatchObject({ provider: 'webhook', answersInMarkdown: true, acceptsImages: true });
    expect((await a.reply(req(Q), never())).text).toBe(`Webhook:${Q}`);
    expect(fake.requests[0]).toMatchObject({ url: '/hooks/agent?tenant=t1', headers: { authorization: `Bearer ${TOKEN}` } });
    const e = await failure(createAdapter({ ...agent, token: null }).reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'auth', status: 401 });
    expect(fake.requests[1]?.headers).not.toHaveProperty('authorization');
  });
});

describe('the webhook fake itself', () => {
  it.each([
    ['an unknown key', { ...bodyOk(), extra: 1 }],
    ['a customer without externalId', { ...bodyOk(), customer: { id: 'cus_x', channel: 'kf', account: 'a' } }],
    ['type text with images', { ...bodyOk(), message: { type: 'text', text: '', images: [{ mime: 'image/png', base64: 'AAAA' }] } }],
    ['a data: URI as base64', { ...bodyOk(), message: { type: 'image', text: '', images: [{ mime: 'image/png', base64: 'data:image/png;base64,AAAA' }] } }],
    ['no state key', { customer: CUSTOMER, message: { type: 'text', text: 'q', images: [] } }],
    ['a system turn in history', { ...bodyOk(), history: [{ role: 'system', content: 'x' }] }],
  ])('refuses a body with %s (400), like a strict endpoint would', async (_what, body) => {
    const res = await axios.post(fake.url, body, { headers: { authorization: `Bearer ${TOKEN}` }, validateStatus: () => true });
    expect(res.status).toBe(400);
  });
});

function bodyOk(): Record<string, unknown> {
  return { customer: CUSTOMER, message: { type: 'text', text: 'q', images: [] }, state: null };
}
