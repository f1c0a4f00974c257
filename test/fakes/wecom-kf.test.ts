// Self-test of the fake WeCom kf API over real HTTP (axios), and of the callback builders.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { computeSignature, decrypt, parseEncodingAesKey } from '../../src/crypto/wxbizmsgcrypt.js';
import { buildKfCallback, buildVerifyUrlQuery, postCallback, startFakeWecom, type FakeWecom } from './wecom-kf.js';

const CORP = 'wwfakecorp0001';
const SECRET = 'fake-kf-secret';
const KF = 'wkFAKEKF0001';
const USER = 'wmFAKEUSER0001';

type Json = Record<string, unknown> & { errcode: number; errmsg: string };

let fake: FakeWecom;
let token: string;
const started: FakeWecom[] = [];

const client = axios.create({ validateStatus: () => true, timeout: 5000 });

async function getToken(corpid = CORP, corpsecret = SECRET): Promise<Json> {
  const r = await client.get<Json>(`${fake.url}/cgi-bin/gettoken`, { params: { corpid, corpsecret } });
  return r.data;
}
async function post(path: string, body: unknown, accessToken: string | null = token): Promise<Json> {
  const params = accessToken === null ? {} : { access_token: accessToken };
  const r = await client.post<Json>(`${fake.url}/cgi-bin/kf/${path}`, body, { params });
  expect(r.status).toBe(200);
  return r.data;
}
const text = (content: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  touser: USER,
  open_kfid: KF,
  msgtype: 'text',
  text: { content },
  ...extra,
});

async function setup(pageSize?: number): Promise<void> {
  fake = await startFakeWecom({ corpId: CORP, kfSecret: SECRET, ...(pageSize !== undefined && { pageSize }) });
  started.push(fake);
  token = (await getToken()).access_token as string;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(started.splice(0).map((f) => f.close()));
});

describe('fake WeCom: access_token', () => {
  beforeEach(() => setup());

  it('issues tokens, rejects bad credentials, and answers 42001 after expireAccessTokens', async () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{100}$/);
    expect((await getToken('wrong', SECRET)).errcode).toBe(40013);
    expect((await getToken(CORP, 'wrong')).errcode).toBe(40001);
    const ok = await getToken();
    expect(ok).toMatchObject({ errcode: 0, errmsg: 'ok', expires_in: 7200 });
    expect(fake.gettokenCount()).toBe(4);

    expect((await post('sync_msg', {}, null)).errcode).toBe(41001);
    expect((await post('sync_msg', {}, 'nope')).errcode).toBe(40014);
    expect((await post('sync_msg', {})).errcode).toBe(0);
    fake.expireAccessTokens();
    expect((await post('sync_msg', {})).errcode).toBe(42001);
    const fresh = (await getToken()).access_token as string;
    expect((await post('sync_msg', {}, fresh)).errcode).toBe(0);
  });

  it('answers 47001 for a body that is not JSON, 404 for unknown paths, and records calls', async () => {
    const r = await client.post<Json>(`${fake.url}/cgi-bin/kf/sync_msg?access_token=${token}`, '{nope', {
      headers: { 'content-type': 'application/json' },
      transformRequest: [(d: unknown) => d],
    });
    expect(r.data.errcode).toBe(47001);
    const missing = await client.post(`${fake.url}/cgi-bin/kf/account/list?access_token=${token}`, {});
    expect(missing.status).toBe(404);
    expect(fake.calls.map((c) => [c.api, c.errcode])).toEqual([
      ['gettoken', 0],
      ['sync_msg', 47001],
      ['/cgi-bin/kf/account/list', -404],
    ]);
  });

  it('failNext answers scripted errors first, then recovers', async () => {
    fake.failNext('sync_msg', -1, 2);
    expect((await post('sync_msg', {})).errcode).toBe(-1);
    expect((await post('sync_msg', {}, 'bogus')).errcode).toBe(-1);
    expect((await post('sync_msg', {})).errcode).toBe(0);
  });
});

describe('fake WeCom: sync_msg', () => {
  it('pages 5 messages with pageSize 2 and opaque cursors; an empty page keeps has_more 1', async () => {
    await setup(2);
    const ids = [1, 2, 3, 4, 5].map((i) => fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: `m${i}` }));
    fake.addCustomerText({ open_kfid: 'wkOTHER', external_userid: USER, content: 'other account' });
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{44}$/);

    const seen: string[] = [];
    const pages: number[] = [];
    let cursor: string | undefined;
    fake.insertEmptyPage(KF);
    for (let i = 0; i < 10; i += 1) {
      const r = await post('sync_msg', { open_kfid: KF, limit: 1000, ...(cursor !== undefined && { cursor }) });
      expect(r.errcode).toBe(0);
      const list = r.msg_list as Array<Record<string, unknown>>;
      pages.push(list.length);
      for (const m of list) {
        expect(m).toMatchObject({ open_kfid: KF, external_userid: USER, origin: 3, msgtype: 'text' });
        expect(typeof m.send_time).toBe('number');
        seen.push(m.msgid as string);
      }
      expect(r.next_cursor).not.toBe(cursor);
      cursor = r.next_cursor as string;
      if (r.has_more === 0) break;
    }
    expect(pages).toEqual([0, 2, 2, 1]);
    expect(seen).toEqual(ids);

    // Nothing new: an empty page with has_more 0; a forged cursor is refused.
    const idle = await post('sync_msg', { open_kfid: KF, cursor });
    expect(idle).toMatchObject({ errcode: 0, has_more: 0, msg_list: [] });
    const forged = `${cursor!.slice(0, 5)}${cursor![5] === 'A' ? 'B' : 'A'}${cursor!.slice(6)}`;
    expect((await post('sync_msg', { open_kfid: KF, cursor: forged })).errcode).toBe(95000);
    expect((await post('sync_msg', { open_kfid: 'wkOTHER', cursor })).errcode).toBe(95000);
    expect((await post('sync_msg', { limit: 1001 })).errcode).toBe(40058);

    // Without open_kfid every account is returned.
    const all = await post('sync_msg', { limit: 1000 });
    expect(all.has_more).toBe(1);
  });

  it('accepts issued sync tokens and answers 95007 once they expire', async () => {
    await setup();
    const t = fake.issueSyncToken();
    expect((await post('sync_msg', { token: t, open_kfid: KF })).errcode).toBe(0);
    expect((await post('sync_msg', { token: 'never-issued', open_kfid: KF })).errcode).toBe(95007);
    fake.expireSyncTokens();
    expect((await post('sync_msg', { token: t, open_kfid: KF })).errcode).toBe(95007);
    expect((await post('sync_msg', { open_kfid: KF })).errcode).toBe(0);
  });

  it('returns enter_session events with the ids inside `event`', async () => {
    await setup();
    const { msgid, welcome_code } = fake.enterSession({ open_kfid: KF, external_userid: USER, withWelcomeCode: true });
    const r = await post('sync_msg', { open_kfid: KF });
    expect(r.msg_list).toEqual([
      {
        msgid,
        send_time: expect.any(Number) as number,
        origin: 4,
        msgtype: 'event',
        event: { event_type: 'enter_session', open_kfid: KF, external_userid: USER, scene: '', scene_param: '', welcome_code },
      },
    ]);
  });
});

describe('fake WeCom: send_msg', () => {
  beforeEach(async () => {
    await setup();
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'hi' });
  });

  it('enforces the msgid rules', async () => {
    expect((await post('send_msg', text('a', { msgid: 'x'.repeat(33) }))).errcode).toBe(40058);
    expect((await post('send_msg', text('a', { msgid: 'bad.char' }))).errcode).toBe(40058);
    const ok = await post('send_msg', text('a', { msgid: `${'x'.repeat(30)}_-` }));
    expect(ok).toMatchObject({ errcode: 0, msgid: `${'x'.repeat(30)}_-` });
    const dup = await post('send_msg', text('b', { msgid: `${'x'.repeat(30)}_-` }));
    expect(dup.errcode).toBe(40058);
    expect(dup.errmsg).toContain('duplicate');
    const generated = await post('send_msg', text('c'));
    expect(generated.errcode).toBe(0);
    expect(typeof generated.msgid).toBe('string');
    expect(fake.sent.map((s) => s.content)).toEqual(['a', 'c']);
  });

  it('limits text to 2048 UTF-8 bytes and checks the parameters', async () => {
    expect((await post('send_msg', text('中'.repeat(683)))).errcode).toBe(45002);
    expect((await post('send_msg', text('中'.repeat(682) + 'ab'))).errcode).toBe(0);
    expect((await post('send_msg', text(''))).errcode).toBe(44004);
    expect((await post('send_msg', text('a', { touser: undefined }))).errcode).toBe(40003);
    expect((await post('send_msg', text('a', { open_kfid: undefined }))).errcode).toBe(95000);
    expect((await post('send_msg', text('a', { touser: 'wmSTRANGER' }))).errcode).toBe(40096);
    expect((await post('send_msg', text('a', { msgtype: 'bogus' }))).errcode).toBe(40008);
  });

  it('answers 95001 on the sixth send and starts over after a new customer message', async () => {
    for (let i = 0; i < 5; i += 1) expect((await post('send_msg', text(`p${i}`))).errcode).toBe(0);
    expect((await post('send_msg', text('p5'))).errcode).toBe(95001);
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'again' });
    for (let i = 0; i < 5; i += 1) expect((await post('send_msg', text(`q${i}`))).errcode).toBe(0);
    expect((await post('send_msg', text('q5'))).errcode).toBe(95001);
    expect(fake.sent).toHaveLength(10);
  });

  it('holds sends without answering and applies delays', async () => {
    fake.holdSends(true);
    const pending = client.post(`${fake.url}/cgi-bin/kf/send_msg`, text('held'), {
      params: { access_token: token },
      timeout: 300,
    });
    await expect(pending).rejects.toThrow();
    expect(fake.held).toHaveLength(1);
    expect(fake.sent).toHaveLength(0);
    fake.holdSends(false);
    fake.setDelay('send_msg', 150);
    const t0 = Date.now();
    expect((await post('send_msg', text('late'))).errcode).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    await fake.waitFor(() => fake.sent.length === 1, 1000);
    await expect(fake.waitFor(() => false, 50)).rejects.toThrow(/timed out after 50 ms/);
  });
});

describe('fake WeCom: send_msg_on_event', () => {
  beforeEach(() => setup());

  it('accepts a welcome_code once', async () => {
    const { welcome_code } = fake.enterSession({ open_kfid: KF, external_userid: USER, withWelcomeCode: true });
    const body = { code: welcome_code, msgid: 'welcome1', msgtype: 'text', text: { content: 'Hello!' } };
    expect((await post('send_msg_on_event', body)).errcode).toBe(0);
    expect(fake.sent).toEqual([
      {
        api: 'send_msg_on_event',
        open_kfid: KF,
        touser: USER,
        msgid: 'welcome1',
        msgtype: 'text',
        content: 'Hello!',
        code: welcome_code,
        at: expect.any(Number) as number,
      },
    ]);
    expect((await post('send_msg_on_event', { ...body, msgid: 'welcome2' })).errcode).toBe(95016);
    expect((await post('send_msg_on_event', { ...body, code: 'never-issued' })).errcode).toBe(95016);
    expect(fake.enterSession({ open_kfid: KF, external_userid: USER, withWelcomeCode: false }).welcome_code).toBeUndefined();
  });
});

describe('fake WeCom: clocks (Date faked only)', () => {
  beforeEach(async () => {
    await setup(2);
    vi.useFakeTimers({ toFake: ['Date'] });
  });

  it('expires access tokens after expires_in and welcome codes after 20 s', async () => {
    const { welcome_code } = fake.enterSession({ open_kfid: KF, external_userid: USER, withWelcomeCode: true });
    vi.setSystemTime(Date.now() + 20_001);
    const body = { code: welcome_code, msgtype: 'text', text: { content: 'late welcome' } };
    expect((await post('send_msg_on_event', body)).errcode).toBe(95016);
    vi.setSystemTime(Date.now() + 7200_000);
    expect((await post('sync_msg', {})).errcode).toBe(42001);
  });

  it('keeps 3 days of messages, refuses sends after 48 h, and caps pages at the requested limit', async () => {
    const now = Math.floor(Date.now() / 1000);
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'ancient', send_time: now - 3 * 86400 - 10 });
    fake.addCustomerText({ open_kfid: KF, external_userid: 'wmOLD', content: 'old', send_time: now - 49 * 3600 });
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'new', send_time: now });
    const first = await post('sync_msg', { open_kfid: KF, limit: 1 });
    expect((first.msg_list as Array<{ text: { content: string } }>).map((m) => m.text.content)).toEqual(['old']);
    expect(first.has_more).toBe(1);
    expect((await post('send_msg', text('a', { touser: 'wmOLD' }))).errcode).toBe(95002);
    expect((await post('send_msg', text('a'))).errcode).toBe(0);
  });
});

describe('callback builders', () => {
  const creds = { token: 'cbtoken', encodingAesKey: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C', corpId: CORP };

  it('buildKfCallback encrypts the inner XML and signs it', () => {
    const cb = buildKfCallback(creds, { open_kfid: KF, syncToken: 'SYNC123', timestamp: 1700000000 });
    const q = new URLSearchParams(cb.query);
    const enc = /<Encrypt><!\[CDATA\[([^\]]+)\]\]><\/Encrypt>/.exec(cb.body)?.[1] ?? '';
    expect(cb.body).toBe(
      `<xml><ToUserName><![CDATA[${CORP}]]></ToUserName><Encrypt><![CDATA[${enc}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>`,
    );
    expect(q.get('timestamp')).toBe('1700000000');
    expect(q.get('msg_signature')).toBe(computeSignature(creds.token, '1700000000', q.get('nonce')!, enc));
    expect(decrypt(parseEncodingAesKey(creds.encodingAesKey), enc)).toEqual({
      message:
        `<xml><ToUserName><![CDATA[${CORP}]]></ToUserName><CreateTime>1700000000</CreateTime>` +
        `<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>` +
        `<Token><![CDATA[SYNC123]]></Token><OpenKfId><![CDATA[${KF}]]></OpenKfId></xml>`,
      receiveid: CORP,
    });
  });

  it('buildVerifyUrlQuery signs an encrypted echostr; postCallback posts it over HTTP', async () => {
    const { query } = buildVerifyUrlQuery(creds, 'echo-1234');
    const q = new URLSearchParams(query);
    const echostr = q.get('echostr')!;
    expect(q.get('msg_signature')).toBe(computeSignature(creds.token, q.get('timestamp')!, q.get('nonce')!, echostr));
    expect(decrypt(parseEncodingAesKey(creds.encodingAesKey), echostr).message).toBe('echo-1234');

    let seen = { url: '', body: '', type: '' };
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        seen = { url: req.url ?? '', body, type: req.headers['content-type'] ?? '' };
        res.end('success');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const cb = buildKfCallback(creds, { open_kfid: KF });
    const r = await postCallback(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, '/wecom/kf/callback', cb);
    await new Promise<void>((r2) => server.close(() => r2()));
    expect(r).toMatchObject({ status: 200, body: 'success' });
    expect(r.ms).toBeGreaterThan(0);
    expect(seen).toEqual({ url: `/wecom/kf/callback?${cb.query}`, body: cb.body, type: 'text/xml' });
  });
});

// ---------------------------------------------------------------- conversation state (kf §4) and msg_codes (kf §3.2)

const state = (external_userid = USER): Promise<Json> => post('service_state/get', { open_kfid: KF, external_userid });
const trans = (service_state: unknown, servicer_userid?: string, external_userid = USER): Promise<Json> =>
  post('service_state/trans', { open_kfid: KF, external_userid, service_state, ...(servicer_userid !== undefined && { servicer_userid }) });
const onEvent = (code: unknown, body: Record<string, unknown> = { msgtype: 'text', text: { content: 'notice' } }): Promise<Json> =>
  post('send_msg_on_event', { code, ...body });
const MENU = { msgtype: 'msgmenu', msgmenu: { head_content: 'h', list: [{ type: 'click', click: { id: '1', content: 'yes' } }] } };
type Item = Record<string, unknown> & { event?: Record<string, unknown> };
async function pullAll(): Promise<Item[]> {
  const r = await post('sync_msg', { open_kfid: KF });
  expect(r.errcode).toBe(0);
  return r.msg_list as Item[];
}

describe('fake WeCom: service_state', () => {
  beforeEach(() => setup());

  it('starts at 0 on a customer message, moves to 1 on send_msg; get/trans validate their parameters', async () => {
    expect((await state()).errcode).toBe(40096);
    expect(fake.serviceState(KF, USER)).toBeUndefined();
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'hi' });
    expect(await state()).toEqual({ errcode: 0, errmsg: 'ok', service_state: 0 });
    expect((await post('send_msg', text('bot answer'))).errcode).toBe(0);
    expect(fake.serviceState(KF, USER)).toBe(1);
    expect((await post('service_state/get', { external_userid: USER })).errcode).toBe(95000);
    expect((await post('service_state/get', { open_kfid: KF })).errcode).toBe(40096);
    expect((await post('service_state/get', { open_kfid: KF, external_userid: 'wmNOBODY' })).errcode).toBe(40096);
    expect((await trans(1, undefined, 'wmNOBODY')).errcode).toBe(40096);
    expect(await codes([trans(5), trans('2'), trans(1.5), trans(0), trans(1)])).toEqual([40058, 40058, 40058, 95016, 95016]);
    expect((await trans(3)).errcode).toBe(40058);
    expect((await trans(3, 'lisi')).errcode).toBe(95014);
    expect((await post('service_state/trans', { external_userid: USER, service_state: 2 })).errcode).toBe(95000);
    expect((await post('service_state/trans', { open_kfid: KF, external_userid: USER, service_state: 2 }, 'bogus')).errcode).toBe(40014);
    expect(fake.serviceState(KF, USER)).toBe(1);
    // an enter_session alone makes the customer known in state 4 ("not started")
    fake.enterSession({ open_kfid: KF, external_userid: 'wmENTERED', withWelcomeCode: false });
    expect((await state('wmENTERED')).service_state).toBe(4);
  });

  it('queue → servicer → ended: msg_codes once per state, 95018 for send_msg in 2/3/4, a new message restarts at 0', async () => {
    fake.setServicers(['zhangsan', 'lisi']);
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'hi' });
    const toQueue = await trans(2);
    expect(toQueue).toMatchObject({ errcode: 0, errmsg: 'ok', msg_code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) as string });
    expect(await state()).toEqual({ errcode: 0, errmsg: 'ok', service_state: 2 });
    expect((await post('send_msg', text('bot in queue'))).errcode).toBe(95018);
    expect(await codes([trans(2), trans(1), trans(4)])).toEqual([95016, 95016, 95016]);

    const toServicer = await trans(3, 'zhangsan');
    expect(typeof toServicer.msg_code).toBe('string');
    expect(await state()).toEqual({ errcode: 0, errmsg: 'ok', service_state: 3, servicer_userid: 'zhangsan' });
    expect((await post('send_msg', text('bot while human'))).errcode).toBe(95018);
    // the queue code belongs to state 2, which the conversation left
    expect((await onEvent(toQueue.msg_code)).errcode).toBe(95018);
    // servicer codes are text only, single use
    expect((await onEvent(toServicer.msg_code, MENU)).errcode).toBe(40008);
    expect((await onEvent(toServicer.msg_code, { msgid: 'xfer1', msgtype: 'text', text: { content: 'transferred' } })).errcode).toBe(0);
    expect((await onEvent(toServicer.msg_code)).errcode).toBe(95016);
    // to another servicer: allowed, but not the first move to 3, so no msg_code; the same servicer again is refused
    expect(await trans(3, 'lisi')).toEqual({ errcode: 0, errmsg: 'ok' });
    expect((await trans(3, 'lisi')).errcode).toBe(95016);
    expect((await state()).servicer_userid).toBe('lisi');

    const ended = await trans(4);
    expect(typeof ended.msg_code).toBe('string');
    expect(fake.serviceState(KF, USER)).toBe(4);
    expect((await post('send_msg', text('after the end'))).errcode).toBe(95018);
    expect((await trans(1)).errcode).toBe(95016);
    expect((await onEvent(ended.msg_code, { ...MENU, msgid: 'bye1' })).errcode).toBe(0);
    expect(fake.sent.map((m) => [m.api, m.msgid, m.msgtype, m.content, m.code])).toEqual([
      ['send_msg_on_event', 'xfer1', 'text', 'transferred', toServicer.msg_code],
      ['send_msg_on_event', 'bye1', 'msgmenu', undefined, ended.msg_code],
    ]);
    expect(fake.sent[1]).toMatchObject({ open_kfid: KF, touser: USER });

    // the customer writes again: a new conversation in state 0, with fresh codes
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'back again' });
    expect(fake.serviceState(KF, USER)).toBe(0);
    expect((await post('send_msg', text('welcome back'))).errcode).toBe(0);
    const again = await trans(2);
    expect(typeof again.msg_code).toBe('string');
    expect(again.msg_code).not.toBe(toQueue.msg_code);
    expect((await onEvent(again.msg_code)).errcode).toBe(0);
  });

  it('a goodbye code dies when a new conversation begins; 0 → 3 directly hands out a servicer code', async () => {
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'hi' });
    expect(typeof (await trans(3, 'zhangsan')).msg_code).toBe('string');
    const bye = await trans(4);
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'one more thing' });
    expect((await onEvent(bye.msg_code)).errcode).toBe(95018);
  });
});

describe('fake WeCom: servicer controls and events in sync_msg', () => {
  beforeEach(() => setup());

  it('servicerTakes from the queue (1), transfer (2), endSession (3), reopen (4), each in the message log', async () => {
    const custMsgid = fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'need a human' });
    expect((await trans(2)).errcode).toBe(0);
    const taken = fake.servicerTakes(KF, USER, 'zhangsan');
    expect(taken.msg_code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fake.serviceState(KF, USER)).toBe(3);
    expect((await post('send_msg', text('bot'))).errcode).toBe(95018);
    expect((await onEvent(taken.msg_code, { msgid: 'taken1', msgtype: 'text', text: { content: 'a human is here' } })).errcode).toBe(0);
    expect(fake.sent).toMatchObject([{ api: 'send_msg_on_event', msgid: 'taken1', code: taken.msg_code, touser: USER }]);
    const moved = fake.servicerTakes(KF, USER, 'lisi');
    expect(moved.msg_code).toBeUndefined();
    const end = fake.endSession(KF, USER);
    expect(fake.serviceState(KF, USER)).toBe(4);
    expect(() => fake.endSession(KF, USER)).toThrow(/already in state 4/);
    const reopened = fake.servicerTakes(KF, USER, 'zhangsan');

    const list = await pullAll();
    expect(list.map((m) => m.msgid)).toEqual([custMsgid, taken.msgid, moved.msgid, end.msgid, reopened.msgid]);
    for (const m of list.slice(1)) {
      expect(m).toMatchObject({ origin: 4, msgtype: 'event', send_time: expect.any(Number) as number });
      expect(m.open_kfid).toBeUndefined();
    }
    expect(list.slice(1).map((m) => m.event)).toEqual([
      {
        event_type: 'session_status_change', open_kfid: KF, external_userid: USER, change_type: 1,
        new_servicer_userid: 'zhangsan', msg_code: taken.msg_code,
      },
      {
        event_type: 'session_status_change', open_kfid: KF, external_userid: USER, change_type: 2,
        old_servicer_userid: 'zhangsan', new_servicer_userid: 'lisi',
      },
      {
        event_type: 'session_status_change', open_kfid: KF, external_userid: USER, change_type: 3,
        old_servicer_userid: 'lisi', msg_code: end.msg_code,
      },
      { event_type: 'session_status_change', open_kfid: KF, external_userid: USER, change_type: 4, new_servicer_userid: 'zhangsan' },
    ]);
    // the goodbye code belonged to state 4, which the reopen left
    expect((await onEvent(end.msg_code)).errcode).toBe(95018);
    expect(() => fake.servicerTakes(KF, 'wmNOBODY', 'zhangsan')).toThrow(/no conversation/);
  });

  it('servicerTakes from state 0 is a transfer (2) without msg_code; a goodbye code allows text or menu once', async () => {
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'hi' });
    const t = fake.servicerTakes(KF, USER, 'zhangsan');
    expect(t.msg_code).toBeUndefined();
    const end = fake.endSession(KF, USER);
    expect((await onEvent(end.msg_code, MENU)).errcode).toBe(0);
    expect((await onEvent(end.msg_code)).errcode).toBe(95016);
    const events = (await pullAll()).filter((m) => m.msgtype === 'event').map((m) => m.event);
    expect(events.map((e) => [e!.change_type, e!.old_servicer_userid])).toEqual([[2, undefined], [3, 'zhangsan']]);
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'new conversation' });
    expect(fake.serviceState(KF, USER)).toBe(0);
  });

  it('addEvent appends msg_send_fail / user_recall_msg; addCustomerMessage takes any msgtype body', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const mediaId = fake.addMedia(Buffer.from('\x89PNG fake image', 'latin1'), 'image/png', 'photo.png');
    const img = fake.addCustomerMessage({ open_kfid: KF, external_userid: USER, msgtype: 'image', body: { media_id: mediaId } });
    const loc = fake.addCustomerMessage({
      open_kfid: KF, external_userid: USER, msgtype: 'location',
      body: { latitude: 23.1, longitude: 113.3, name: 'Canton Tower', address: 'Guangzhou' },
    });
    const merged = fake.addCustomerMessage({
      open_kfid: KF, external_userid: USER, msgtype: 'merged_msg',
      body: { title: 'chat', item: [{ sender_name: 'a', msg_content: '{"text":{"content":"x"}}', send_time: 1, msgtype: 'text' }] },
    });
    const menu = fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'Yes', menu_id: '101' });
    const failed = fake.addEvent({ event_type: 'msg_send_fail', open_kfid: KF, external_userid: USER, fail_msgid: 'out1', fail_type: 4 });
    const recall = fake.addEvent({ event_type: 'user_recall_msg', open_kfid: KF, external_userid: USER, recall_msgid: img }, nowS - 60);
    expect(() => fake.addEvent({ open_kfid: KF })).toThrow(/event_type/);

    const list = await pullAll();
    expect(list.map((m) => m.msgid)).toEqual([img, loc, merged, menu, failed, recall]);
    expect(list[0]).toMatchObject({ origin: 3, open_kfid: KF, external_userid: USER, msgtype: 'image', image: { media_id: mediaId } });
    expect(list[1]).toMatchObject({ msgtype: 'location', location: { name: 'Canton Tower', latitude: 23.1 } });
    expect((list[2]!.merged_msg as { item: unknown[] }).item).toHaveLength(1);
    expect(list[3]).toMatchObject({ msgtype: 'text', text: { content: 'Yes', menu_id: '101' } });
    expect(list[4]).toMatchObject({ origin: 4, msgtype: 'event', event: { event_type: 'msg_send_fail', fail_msgid: 'out1', fail_type: 4 } });
    expect(list[5]).toMatchObject({ send_time: nowS - 60, event: { event_type: 'user_recall_msg', recall_msgid: img } });
    // the customer's image can be downloaded
    const got = await mediaGet(mediaId);
    expect(got.body.toString('latin1')).toBe('\x89PNG fake image');
  });
});

// ---------------------------------------------------------------- media (kf §5.3)

interface Part {
  name?: string;
  bytes: Buffer | string;
  filename?: string;
  contentType?: string;
}
async function upload(type: string | undefined, parts: Part[], accessToken: string = token): Promise<Json> {
  const fd = new FormData();
  for (const p of parts) {
    if (typeof p.bytes === 'string' && p.filename === undefined) fd.append(p.name ?? 'media', p.bytes);
    else fd.append(p.name ?? 'media', new Blob([p.bytes], { type: p.contentType ?? '' }), p.filename ?? '');
  }
  const q = new URLSearchParams({ access_token: accessToken, ...(type !== undefined && { type }) });
  const r = await fetch(`${fake.url}/cgi-bin/media/upload?${q}`, { method: 'POST', body: fd });
  expect(r.status).toBe(200);
  return (await r.json()) as Json;
}
async function mediaGet(mediaId: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; disposition: string; body: Buffer; range: string }> {
  const r = await fetch(`${fake.url}/cgi-bin/media/get?access_token=${token}&media_id=${encodeURIComponent(mediaId)}`, { headers });
  return {
    status: r.status,
    type: r.headers.get('content-type') ?? '',
    disposition: r.headers.get('content-disposition') ?? '',
    range: r.headers.get('content-range') ?? '',
    body: Buffer.from(await r.arrayBuffer()),
  };
}
const png = (n: number): Buffer => Buffer.alloc(n, 7);
async function codes(ps: Array<Promise<Json>>): Promise<number[]> {
  return (await Promise.all(ps)).map((r) => r.errcode);
}

describe('fake WeCom: media', () => {
  beforeEach(() => setup());

  it('uploads multipart `media`, answers created_at as a string, records it, and serves it back', async () => {
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const t0 = Math.floor(Date.now() / 1000);
    const up = await upload('image', [{ bytes, filename: 'chart.png', contentType: 'image/png' }]);
    expect(up).toEqual({
      errcode: 0, errmsg: 'ok', type: 'image',
      media_id: expect.stringMatching(/^[1-9][A-Za-z0-9_-]{43}$/) as string,
      created_at: expect.stringMatching(/^\d{10}$/) as string,
    });
    expect(Number(up.created_at)).toBeGreaterThanOrEqual(t0);
    expect(fake.uploads).toEqual([
      { type: 'image', media_id: up.media_id, filename: 'chart.png', contentType: 'image/png', bytes, at: expect.any(Number) as number },
    ]);
    expect(fake.calls.at(-1)).toMatchObject({
      api: 'media_upload', query: { type: 'image' }, errcode: 0,
      body: { parts: [{ name: 'media', filename: 'chart.png', contentType: 'image/png', size: 11 }] },
    });
    const got = await mediaGet(up.media_id as string);
    expect(got).toMatchObject({ status: 200, type: 'image/png', disposition: 'attachment; filename="chart.png"' });
    expect(got.body.equals(bytes)).toBe(true);

    // a UTF-8 file name survives the upload and comes back as raw UTF-8 bytes in Content-disposition
    const doc = await upload('file', [{ bytes: 'quarterly numbers', filename: '报告 Q1.pdf', contentType: 'application/pdf' }]);
    expect(doc.errcode).toBe(0);
    expect(fake.uploads[1]!.filename).toBe('报告 Q1.pdf');
    const d = await mediaGet(doc.media_id as string);
    expect(Buffer.from(d.disposition, 'latin1').toString('utf8')).toBe('attachment; filename="报告 Q1.pdf"');
    expect(d.type).toBe('application/pdf');
    const quoted = await mediaGet(fake.addMedia(Buffer.from('x'), 'text/plain', 'a "b"\\c.txt'));
    expect(quoted.disposition).toBe('attachment; filename="a \\"b\\"\\\\c.txt"');
  });

  it('refuses bad tokens, types, bodies, parts, extensions and sizes', async () => {
    const ok: Part = { bytes: png(100), filename: 'a.png', contentType: 'image/png' };
    expect((await upload('image', [ok], 'bogus')).errcode).toBe(40014);
    expect(await codes([upload(undefined, [ok]), upload('thumb', [ok])])).toEqual([40005, 40005]);
    const json = await client.post<Json>(`${fake.url}/cgi-bin/media/upload`, { media: 'x' }, { params: { access_token: token, type: 'image' } });
    expect(json.data.errcode).toBe(47001);
    expect((await upload('image', [{ ...ok, name: 'file' }])).errcode).toBe(41005);
    expect((await upload('image', [ok, ok])).errcode).toBe(47001);
    expect((await upload('image', [{ bytes: 'not a file' }])).errcode).toBe(40004); // a field without filename
    expect(await codes([
      upload('image', [{ ...ok, filename: 'a.gif' }]),
      upload('image', [{ ...ok, filename: 'png' }]),
      upload('voice', [{ bytes: png(100), filename: 'v.mp3', contentType: 'audio/mpeg' }]),
      upload('video', [{ bytes: png(100), filename: 'v.mov', contentType: 'video/quicktime' }]),
    ])).toEqual([40004, 40004, 40004, 40004]);
    expect(await codes([
      upload('voice', [{ bytes: png(100), filename: 'v.amr', contentType: 'audio/amr' }]),
      upload('video', [{ bytes: png(100), filename: 'v.MP4', contentType: 'video/mp4' }]),
      upload('file', [{ bytes: png(100), filename: 'README', contentType: 'text/plain' }]),
    ])).toEqual([0, 0, 0]);
    expect(await codes([
      upload('image', [{ ...ok, bytes: png(5) }]),
      upload('image', [{ ...ok, bytes: png(6) }]),
      upload('voice', [{ bytes: png(2 * 1024 * 1024 + 1), filename: 'v.amr' }]),
    ])).toEqual([40006, 0, 40006]);
    expect((await upload('image', [{ ...ok, bytes: png(10 * 1024 * 1024) }])).errcode).toBe(0);
    expect((await upload('image', [{ ...ok, bytes: png(10 * 1024 * 1024 + 1) }])).errcode).toBe(40006);
    // 20 MB files fit the media route's 21 MB body limit; one byte more is 40006, not HTTP 413
    expect((await upload('file', [{ bytes: png(20 * 1024 * 1024), filename: 'big.bin' }])).errcode).toBe(0);
    expect((await upload('file', [{ bytes: png(20 * 1024 * 1024 + 1), filename: 'big.bin' }])).errcode).toBe(40006);
    expect(fake.uploads.map((u) => u.type)).toEqual(['voice', 'video', 'file', 'image', 'image', 'file']);
    fake.failNext('media_upload', -1);
    expect((await upload('image', [ok])).errcode).toBe(-1);
  }, 30_000);

  it('media/get: JSON 40007 for unknown ids, Range chunks, 830002 over 20 MB without Range', async () => {
    const miss = await fetch(`${fake.url}/cgi-bin/media/get?access_token=${token}&media_id=nope`);
    expect(miss.status).toBe(200);
    expect(miss.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    expect(await miss.json()).toMatchObject({ errcode: 40007, errmsg: expect.stringContaining('invalid media_id') as string });
    const noId = await fetch(`${fake.url}/cgi-bin/media/get?access_token=${token}`);
    expect(((await noId.json()) as Json).errcode).toBe(40007);
    const badToken = await fetch(`${fake.url}/cgi-bin/media/get?access_token=bogus&media_id=nope`);
    expect(((await badToken.json()) as Json).errcode).toBe(40014);
    const postGet = await client.post<Json>(`${fake.url}/cgi-bin/media/get`, {}, { params: { access_token: token } });
    expect(postGet.data.errcode).toBe(43002);

    const id = fake.addMedia(Buffer.from('0123456789'), 'audio/amr', 'voice.amr');
    const part = await mediaGet(id, { range: 'bytes=2-5' });
    expect(part).toMatchObject({ status: 206, type: 'audio/amr', range: 'bytes 2-5/10' });
    expect(part.body.toString()).toBe('2345');
    expect((await mediaGet(id, { range: 'bytes=-3' })).body.toString()).toBe('789');
    expect((await mediaGet(id, { range: 'bytes=20-' })).status).toBe(416);

    const big = fake.addMedia(Buffer.alloc(20 * 1024 * 1024 + 1), 'application/zip', 'big.zip');
    const whole = await mediaGet(big);
    expect(JSON.parse(whole.body.toString()) as Json).toMatchObject({ errcode: 830002 });
    const head = await mediaGet(big, { range: 'bytes=0-1023' });
    expect(head).toMatchObject({ status: 206, range: `bytes 0-1023/${20 * 1024 * 1024 + 1}` });
    expect(fake.calls.filter((c) => c.api === 'media_get').map((c) => c.errcode)).toEqual([40007, 40007, 40014, 43002, 0, 0, 0, 830002, 0]);
  });

  it('send_msg image needs a live media_id and records it', async () => {
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'send me the chart' });
    const up = await upload('image', [{ bytes: png(64), filename: 'c.jpg', contentType: 'image/jpeg' }]);
    const img = (media_id: unknown): Record<string, unknown> => ({ touser: USER, open_kfid: KF, msgtype: 'image', image: { media_id } });
    expect(await codes([post('send_msg', img('nope')), post('send_msg', img(undefined))])).toEqual([40007, 40007]);
    expect((await post('send_msg', { ...img('x'), image: undefined })).errcode).toBe(40058);
    expect((await post('send_msg', img(up.media_id))).errcode).toBe(0);
    const fileId = fake.addMedia(Buffer.from('%PDF-1.4 ...'), 'application/pdf', 'a.pdf');
    expect((await post('send_msg', { touser: USER, open_kfid: KF, msgtype: 'file', file: { media_id: fileId } })).errcode).toBe(0);
    expect(fake.sent.map((m) => [m.msgtype, m.media_id, m.content])).toEqual([['image', up.media_id, undefined], ['file', fileId, undefined]]);
  });
});

describe('fake WeCom: code and media lifetimes (Date faked only)', () => {
  beforeEach(async () => {
    await setup();
    vi.useFakeTimers({ toFake: ['Date'] });
  });

  it('goodbye codes last 20 s, queue codes 48 h, media 3 days', async () => {
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'hi' });
    const q = await trans(2);
    vi.setSystemTime(Date.now() + 48 * 3600_000 + 1000);
    token = (await getToken()).access_token as string;
    expect((await onEvent(q.msg_code)).errcode).toBe(95016);
    fake.servicerTakes(KF, USER, 'zhangsan');
    const end = fake.endSession(KF, USER);
    vi.setSystemTime(Date.now() + 20_001);
    expect((await onEvent(end.msg_code)).errcode).toBe(95016);

    const id = fake.addMedia(Buffer.from('abcdefgh'), 'image/png', 'x.png');
    const send = (): Promise<Json> => post('send_msg', { touser: USER, open_kfid: KF, msgtype: 'image', image: { media_id: id } });
    vi.setSystemTime(Date.now() + 3 * 86400_000 - 1000);
    token = (await getToken()).access_token as string;
    fake.addCustomerText({ open_kfid: KF, external_userid: USER, content: 'again' });
    expect((await mediaGet(id)).status).toBe(200);
    expect((await send()).errcode).toBe(0);
    vi.setSystemTime(Date.now() + 2000);
    expect(JSON.parse((await mediaGet(id)).body.toString()) as Json).toMatchObject({ errcode: 40007 });
    expect((await send()).errcode).toBe(40007);
  });
});
