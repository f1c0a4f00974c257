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
    const missing = await client.post(`${fake.url}/cgi-bin/kf/service_state/get?access_token=${token}`, {});
    expect(missing.status).toBe(404);
    expect(fake.calls.map((c) => [c.api, c.errcode])).toEqual([
      ['gettoken', 0],
      ['sync_msg', 47001],
      ['/cgi-bin/kf/service_state/get', -404],
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
