/**
 * The operator API through the real server (docs/configuration.md "Operator API"): off without ADMIN_TOKEN, Bearer
 * auth with wrong attempts limited, the message log of a kf conversation (inbound row settled, outbound rows per
 * part), customers by identity, reset, export, erasure, failures and their replay, validation errors naming the
 * field, and the OpenAPI document generated from the route schemas.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { CREDS, sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';

const TOKEN = 'admin-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

async function admin(h: Harness, path: string, o: { method?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${h.url}/admin${path}`, { method: o.method ?? 'GET', headers: o.headers ?? auth });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text (404 of a server without the admin API)
  }
  return { status: res.status, body: body as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Waits until the log shows what `ok` wants (rows are written in the background). */
async function until(h: Harness, ok: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  for (let i = 0; i < timeoutMs / 50; i++) {
    await h.deps.data.log.flush();
    if (await ok()) return;
    await sleep(50);
  }
  throw new Error('the log never showed it');
}

describe('operator API (/admin)', () => {
  let h: Harness | undefined;
  let llm: FakeOpenAI | undefined;
  afterEach(async () => {
    await h?.close();
    await llm?.close();
    h = llm = undefined;
  });

  it('is off without ADMIN_TOKEN (404), needs the Bearer token, and limits wrong attempts per address', async () => {
    h = await startHarness();
    expect((await admin(h, '/status')).status).toBe(404);
    await h.close();
    h = await startHarness({ env: { ADMIN_TOKEN: TOKEN } });
    expect(await admin(h, '/status', { headers: {} })).toEqual({ status: 401, body: { error: 'unauthorized' } });
    expect((await admin(h, '/openapi.json', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const ok = await admin(h, '/status');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ role: 'all', store: 'memory', log: 'memory', ready: true, channels: { kf: true, mp: false, bot: false }, agents: ['default'] });
    for (let i = 0; i < 12; i++) await admin(h, '/status', { headers: { authorization: `Bearer wrong${i}` } });
    expect((await admin(h, '/status', { headers: { authorization: 'Bearer wrong-again' } })).status).toBe(429);
    // The right token is never limited.
    expect((await admin(h, '/status')).status).toBe(200);
  });

  it('a kf conversation in the log: the inbound row answered, one outbound row per part, the customer by identity', async () => {
    h = await startHarness({ env: { ADMIN_TOKEN: TOKEN } });
    const msgid = await h.customerSays('wmAdminA', '你好，管理员 😀');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmAdminA').length === 1);
    await until(h, async () => (await admin(h!, '/messages?direction=in&status=answered')).body.items?.length === 1);
    const inbound = (await admin(h, '/messages?direction=in')).body.items[0];
    expect(inbound).toMatchObject({ direction: 'in', channel: 'kf', externalId: 'wmAdminA', msgid, type: 'text', content: '你好，管理员 😀', status: 'answered', agent: 'default' });
    expect(inbound.customerId).toMatch(/^cus_[a-z2-7]{20}$/);
    expect(Date.parse(inbound.at)).not.toBeNaN();
    const out = (await admin(h, '/messages?direction=out')).body.items;
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ direction: 'out', type: 'answer', content: '你好，管理员 😀', status: 'sent', customerId: inbound.customerId });
    const customers = (await admin(h, `/customers?channel=kf&externalId=wmAdminA`)).body.items;
    expect(customers).toEqual([expect.objectContaining({ customerId: inbound.customerId, identities: [{ channel: 'kf', account: CREDS.corpId, externalId: 'wmAdminA' }] })]);
    const one = (await admin(h, `/customers/${inbound.customerId}`)).body;
    expect(one).toMatchObject({ customerId: inbound.customerId, state: 'bot' });
    expect(one.recent.map((r: { direction: string }) => r.direction).sort()).toEqual(['in', 'out']);
    expect(await admin(h, '/customers/cus_aaaaaaaaaaaaaaaaaaaa')).toEqual({ status: 404, body: { error: 'customerId: no such customer' } });
  });

  it('bad query values are 400 naming the field; limit over 200 is clamped; pages chain by cursor', async () => {
    h = await startHarness({ env: { ADMIN_TOKEN: TOKEN } });
    expect(await admin(h, '/messages?limit=abc')).toEqual({ status: 400, body: { error: 'limit: must be integer' } });
    expect((await admin(h, '/messages?direction=sideways')).body.error).toMatch(/^direction: /);
    expect((await admin(h, '/messages?from=yesterday')).body.error).toMatch(/^from: /);
    for (let i = 0; i < 3; i++) await h.customerSays(`wmPage${i}`, `第${i}条`);
    await h.fake.waitFor(() => h!.fake.sent.length === 3);
    await until(h, async () => (await admin(h!, '/messages?direction=in&status=answered')).body.items?.length === 3);
    const first = await admin(h, '/messages?direction=in&limit=2');
    expect(first.body.items).toHaveLength(2);
    const second = await admin(h, `/messages?direction=in&limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    expect((await admin(h, '/messages?limit=500')).status).toBe(200);
  });

  it('reset clears the conversation with every agent; export holds everything; DELETE erases and a new id follows', async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-admin' });
    h = await startHarness({ env: { ADMIN_TOKEN: TOKEN, LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: 'sk-admin' } });
    await h.customerSays('wmReset', '第一句');
    await h.fake.waitFor(() => h!.fake.sent.length === 1);
    await until(h, async () => (await admin(h!, '/customers?externalId=wmReset')).body.items?.length === 1);
    const id = (await admin(h, '/customers?externalId=wmReset')).body.items[0].customerId as string;
    const exported = await admin(h, `/customers/${id}/export`);
    expect(exported.body.customer.customerId).toBe(id);
    expect(exported.body.messages.length).toBeGreaterThanOrEqual(2);
    expect(Object.keys(exported.body.conversationState).some((k) => k.startsWith('conv:default:kf:'))).toBe(true);
    expect(await admin(h, `/customers/${id}/reset`, { method: 'POST' })).toEqual({ status: 200, body: { reset: true } });
    await h.customerSays('wmReset', '第二句');
    await h.fake.waitFor(() => h!.fake.sent.length === 2);
    const asked = llm.requests.at(-1)?.body.messages as Array<{ role: string; content: string }>;
    expect(asked.filter((m) => m.role !== 'system').map((m) => m.content)).toEqual(['第二句']);
    expect(await admin(h, `/customers/${id}`, { method: 'DELETE' })).toEqual({ status: 200, body: { erased: true } });
    expect((await admin(h, `/customers/${id}`)).status).toBe(404);
    expect((await admin(h, `/messages?customer=${id}`)).body.items).toEqual([]);
    await h.customerSays('wmReset', '我又来了');
    await h.fake.waitFor(() => h!.fake.sent.length === 3);
    await until(h, async () => (await admin(h!, '/customers?externalId=wmReset')).body.items?.length === 1);
    expect((await admin(h, '/customers?externalId=wmReset')).body.items[0].customerId).not.toBe(id);
  });

  it('a reply whose attempts ran out is listed with its errcode; replay sends it with its original msgid', { timeout: 30_000 }, async () => {
    // One attempt: its send is tried 4 times over ~4 s (45033, busy), then the give-up's fallback twice.
    h = await startHarness({ env: { ADMIN_TOKEN: TOKEN }, overrides: { queue: { maxAttempts: 1 } } });
    h.fake.failNext('send_msg', 45033, 6);
    await h.customerSays('wmFail', '会失败的回答');
    await until(h, async () => (await admin(h!, '/failures')).body.items?.length === 1, 15_000);
    const f = (await admin(h, '/failures')).body.items[0];
    expect(f).toMatchObject({ channel: 'kf', externalId: 'wmFail', parts: ['会失败的回答'], sent: 0, errcode: 45033 });
    expect((await admin(h, '/messages?direction=in&status=failed')).body.items).toHaveLength(1);
    h.fake.clearFailures();
    expect(await admin(h, `/failures/${f.id}/replay`, { method: 'POST' })).toEqual({ status: 200, body: { replayed: true, errcode: null, reason: null } });
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmFail').includes('会失败的回答'));
    const sentIds = h.fake.sent.filter((s) => s.touser === 'wmFail' && s.content === '会失败的回答').map((s) => s.msgid);
    expect(sentIds).toEqual([f.partIds[0]]);
    expect((await admin(h, '/failures')).body.items).toEqual([]);
  });

  it('/admin/openapi.json is generated from the route schemas', async () => {
    h = await startHarness({ env: { ADMIN_TOKEN: TOKEN } });
    const doc = (await admin(h, '/openapi.json')).body;
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of ['/admin/status', '/admin/messages', '/admin/customers', '/admin/customers/{customerId}', '/admin/customers/{customerId}/reset', '/admin/failures']) {
      expect(Object.keys(doc.paths), path).toContain(path);
    }
    expect(doc.paths['/admin/messages'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['channel', 'account', 'customer', 'direction', 'status', 'from', 'to', 'limit', 'cursor']),
    );
  });
});
