/**
 * The console's server side and the operator's actions (interface.md "Operator API", issue 15): the login form sets
 * a session cookie that `/admin` accepts (with the CSRF token for changes), `/admin/events` streams new rows and
 * state changes, `reply` / `handoff` / `resume` step into a kf conversation and give it back, `/admin/summary`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';

const TOKEN = 'admin-token-0123456789abcdef';
const bearer = { authorization: `Bearer ${TOKEN}` };

async function login(h: Harness, token: string): Promise<{ status: number; location: string | null; cookie: string | null }> {
  const res = await fetch(`${h.url}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  const setCookie = res.headers.get('set-cookie');
  return { status: res.status, location: res.headers.get('location'), cookie: setCookie ? (setCookie.split(';')[0] ?? null) : null };
}

/** Reads SSE events from `/admin/events` until `want` is satisfied. */
async function collectEvents(h: Harness, headers: Record<string, string>, want: (events: Array<{ event: string; data: any }>) => boolean, timeoutMs = 5000) { // eslint-disable-line @typescript-eslint/no-explicit-any
  const ac = new AbortController();
  const res = await fetch(`${h.url}/admin/events`, { headers, signal: ac.signal });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const events: Array<{ event: string; data: any }> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const reader = res.body!.getReader();
  let buffer = '';
  const deadline = Date.now() + timeoutMs;
  const ready = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += new TextDecoder().decode(value);
      let i: number;
      while ((i = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
      if (want(events) || Date.now() > deadline) return;
    }
  })();
  return {
    events,
    done: async () => {
      await Promise.race([ready, sleep(timeoutMs)]);
      ac.abort();
      return events;
    },
  };
}

describe('console login and operator actions', () => {
  let h: Harness;
  beforeAll(async () => {
    // Hand-off to a named servicer (state 3): from there WeCom lets `resume` end the conversation (3 → 4). From the
    // queue (2) it does not (kf §4.1), and resume answers 409 saying so.
    h = await startHarness({ env: { ADMIN_TOKEN: TOKEN, HANDOFF_SERVICE_STATE: '3', HANDOFF_SERVICER_USERID: 'zhangsan' } });
  });
  afterAll(async () => h.close());

  it('the login form: a wrong token goes back with login=failed and no cookie; the right one sets a strict HttpOnly cookie', async () => {
    const wrong = await login(h, 'nope');
    expect(wrong).toEqual({ status: 303, location: '/console/?login=failed', cookie: null });
    const res = await fetch(`${h.url}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${TOKEN}`,
    });
    expect(res.status).toBe(303);
    const raw = res.headers.get('set-cookie') ?? '';
    expect(raw).toMatch(/^wab_session=/);
    expect(raw).toMatch(/HttpOnly/i);
    expect(raw).toMatch(/SameSite=Strict/i);
    expect(raw).not.toMatch(/Secure/i); // plain http here; behind TLS it is Secure
    const tls = await fetch(`${h.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' }, body: `token=${TOKEN}` });
    expect(tls.headers.get('set-cookie')).toMatch(/Secure/);
  });

  it('/admin accepts the session cookie for reads, and for changes only with the CSRF token', async () => {
    const { cookie } = await login(h, TOKEN);
    expect((await fetch(`${h.url}/console/session`)).status).toBe(401);
    const session = await fetch(`${h.url}/console/session`, { headers: { cookie: cookie! } });
    const { csrf } = (await session.json()) as { csrf: string };
    expect(csrf).toMatch(/^[\w-]{20,}$/);
    expect((await fetch(`${h.url}/admin/status`, { headers: { cookie: cookie! } })).status).toBe(200);
    expect((await fetch(`${h.url}/admin/status`, { headers: { cookie: 'wab_session=1.2.forged' } })).status).toBe(401);
    const customers = (await (await fetch(`${h.url}/admin/customers`, { headers: bearer })).json()) as { items: unknown[] };
    expect(customers.items).toEqual([]);
    const post = (headers: Record<string, string>) => fetch(`${h.url}/admin/customers/cus_nobody/reset`, { method: 'POST', headers });
    expect((await post({ cookie: cookie! })).status).toBe(403);
    expect((await post({ cookie: cookie!, 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect((await post({ cookie: cookie!, 'x-csrf-token': csrf })).status).toBe(404); // authorised; no such customer
    // Log-out needs the token too (a cross-site form cannot log the operator out).
    await fetch(`${h.url}/console/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=wrong' });
    const out = await fetch(`${h.url}/console/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}` });
    expect(out.headers.get('set-cookie')).toMatch(/wab_session=;/);
  });

  it('events stream new rows; reply makes the bot quiet (no LLM answer), handoff moves WeCom to a human, resume gives it back', async () => {
    const stream = await collectEvents(h, bearer, (evs) => evs.some((e) => e.event === 'message' && e.data.direction === 'out'));
    await h.customerSays('wmOperator1', '你好');
    const events = await stream.done();
    expect(events.find((e) => e.event === 'message' && e.data.direction === 'in')?.data).toMatchObject({ channel: 'kf', content: '你好', customerId: expect.stringMatching(/^cus_/) });
    await h.fake.waitFor(() => textsTo(h.fake, 'wmOperator1').length === 1, 5000);
    const customerId = events.find((e) => e.event === 'message')!.data.customerId as string;

    const act = (what: string, body?: unknown) =>
      fetch(`${h.url}/admin/customers/${customerId}/${what}`, { method: 'POST', headers: { ...bearer, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : null });
    const states = await collectEvents(h, bearer, (evs) => evs.filter((e) => e.event === 'state').length >= 3);
    const replied = await act('reply', { text: '我是人工客服小李' });
    expect(replied.status).toBe(200);
    expect(await replied.json()).toEqual({ state: 'human' });
    expect(textsTo(h.fake, 'wmOperator1')).toEqual(['你好', '我是人工客服小李']);
    // The bot stays quiet while the operator holds the conversation.
    await h.customerSays('wmOperator1', '还在吗');
    await sleep(500);
    expect(textsTo(h.fake, 'wmOperator1')).toHaveLength(2);
    const detail = (await (await fetch(`${h.url}/admin/customers/${customerId}`, { headers: bearer })).json()) as { state: string; nickname: string };
    expect(detail.state).toBe('human');
    // The kf nickname, from WeCom's customer/batchget once, then kept with the identity.
    expect(detail.nickname).toBe('顾客tor1');
    const batchgets = () => h.fake.calls.filter((c) => c.api === 'customer_batchget').length;
    const before = batchgets();
    await fetch(`${h.url}/admin/customers/${customerId}`, { headers: bearer });
    expect(batchgets()).toBe(before);

    expect(await (await act('handoff')).json()).toEqual({ state: 'human' });
    expect(await (await act('resume')).json()).toEqual({ state: 'bot' });
    const stateEvents = (await states.done()).filter((e) => e.event === 'state').map((e) => e.data);
    expect(stateEvents).toEqual([
      { customerId, state: 'human' },
      { customerId, state: 'human' },
      { customerId, state: 'bot' },
    ]);
    // WeCom was asked to end the conversation the servicer held; the next message starts a bot conversation.
    await h.customerSays('wmOperator1', '机器人回来了吗');
    await h.fake.waitFor(() => textsTo(h.fake, 'wmOperator1').includes('机器人回来了吗'), 5000);
    const rows = (await (await fetch(`${h.url}/admin/messages?customer=${customerId}&direction=out`, { headers: bearer })).json()) as { items: Array<{ type: string; content: string }> };
    expect(rows.items.some((r) => r.type === 'operator' && r.content === '我是人工客服小李')).toBe(true);
  });

  it('reply is 409 for a channel without one (an OpenAI-compatible caller would be one) and 400 without text', async () => {
    const c = await h.deps.data.identities.resolve({ channel: 'openai-compat', account: 'key1', externalId: 'u' });
    const res = await fetch(`${h.url}/admin/customers/${c}/reply`, { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'hi' }) });
    expect(res.status).toBe(409);
    const empty = await fetch(`${h.url}/admin/customers/${c}/reply`, { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: JSON.stringify({}) });
    expect(empty.status).toBe(400);
  });

  it('/admin/summary: 60 minutes of counts, latencies, queue and health', async () => {
    const s = (await (await fetch(`${h.url}/admin/summary`, { headers: bearer })).json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(s.perMinute).toHaveLength(60);
    expect(s.perMinute.reduce((n: number, m: { answered: number }) => n + m.answered, 0)).toBeGreaterThanOrEqual(1);
    expect(s.ackP99Ms).toBeGreaterThan(0);
    expect(s.llm).toEqual([{ agent: 'default', p95Ms: expect.any(Number), breakerOpen: false }]);
    expect(s).toMatchObject({ redis: 'off', mysql: 'off', queue: { waiting: 0 } });
  });

  it('login attempts are limited per address: past 10 a minute the form goes back with login=limited', async () => {
    const results = [];
    for (let i = 0; i < 12; i++) results.push((await login(h, `wrong${i}`)).location);
    expect(results.at(-1)).toBe('/console/?login=limited');
    expect(results.filter((l) => l === '/console/?login=failed').length).toBeLessThanOrEqual(10);
    // Behind a reverse proxy on a trusted (loopback/private) address, each client has its own count.
    const viaProxy = await fetch(`${h.url}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '203.0.113.7' },
      body: 'token=wrong-again',
    });
    expect(viaProxy.headers.get('location')).toBe('/console/?login=failed');
  });

  it('/console and /console/ serve the page (or say to build it); without ADMIN_TOKEN they are 404', async () => {
    for (const path of ['/console', '/console/']) {
      const page = await fetch(`${h.url}${path}`, { redirect: 'manual' });
      expect([200, 503]).toContain(page.status);
      if (page.status === 200) expect(await page.text()).toContain('<div id="app"');
    }
    const off = await startHarness();
    try {
      expect((await fetch(`${off.url}/console`)).status).toBe(404);
      expect((await fetch(`${off.url}/console/login`, { method: 'POST' })).status).toBe(404);
    } finally {
      await off.close();
    }
  });
});
