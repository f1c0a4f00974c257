// Self-test of the Official Account fakes: reference crypto (known answers and a cross-check with src/), push
// builders, the passive-reply opener, the strict API fake over real HTTP, and WeChat-like delivery timing.
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { computeSignature, decrypt, encrypt, parseEncodingAesKey } from '../../src/crypto/wxbizmsgcrypt.js';
import { parseXml } from '../../src/xml/parse.js';
import { startFakeMpApi, type FakeMpApi } from './wechat-mp-api.js';
import {
  buildMpPush, buildMpVerifyQuery, deliverLikeWechat, eventMsg, mpXml, openPassiveReply, textMsg, voiceMsg,
  type MpCreds,
} from './wechat-mp-push.js';
import { mpMsgSignature, mpSignature, refDecrypt, refEncrypt } from './wechat-mp-reference-crypto.js';

const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const CREDS: MpCreds = { appId: 'wx1234567890abcdef', token: 'mptoken123', encodingAesKey: KEY, ghId: 'gh_0123456789ab' };
const USER = 'oFAKE_openid_000000000000001';
const SECRET = 'fake-mp-secret';

type Vector = Record<'id' | 'token' | 'encoding_aes_key' | 'receiveid' | 'encrypt' | 'expected_plaintext', string> &
  Partial<Record<'timestamp' | 'nonce' | 'msg_signature' | 'random', string>>;
const VECTORS = (
  JSON.parse(readFileSync(new URL('../fixtures/wxbizmsgcrypt-vectors.json', import.meta.url), 'utf8')) as {
    vectors: Vector[];
  }
).vectors;
const vector = (id: string): Vector => VECTORS.find((v) => v.id === id)!;

/** Raw AES-256-CBC with the EncodingAESKey and no padding: lets a test craft broken plaintexts. */
function rawEncrypt(plain: Buffer): string {
  const key = Buffer.from(`${KEY}=`, 'base64');
  const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(plain), c.final()]).toString('base64');
}

describe('reference crypto', () => {
  it("matches the doc's signature vector and the published OA / WxJava known answers", () => {
    expect(mpSignature('AAAAA', '1714037059', '486452656')).toBe('899cf89e464efb63f54ddac96b0a0a235f53aa78');
    const oa = vector('oa-xml-post');
    expect(mpMsgSignature(oa.token, oa.timestamp!, oa.nonce!, oa.encrypt)).toBe(oa.msg_signature);
    expect(refDecrypt(oa.encoding_aes_key, oa.encrypt)).toEqual({ xml: oa.expected_plaintext, appId: oa.receiveid });
    for (const id of ['wxjava-encrypt-1', 'wxjava-encrypt-2']) {
      const v = vector(id);
      const random = Buffer.from(v.random!, 'utf8');
      expect(refEncrypt(v.encoding_aes_key, v.expected_plaintext, v.receiveid, random)).toBe(v.encrypt);
    }
  });

  it('round-trips every length around the 32-byte block (pad values 1..32)', () => {
    for (let n = 0; n < 70; n += 1) {
      const xml = `<xml>${'中'.repeat(n % 5)}${'x'.repeat(n)}</xml>`;
      expect(refDecrypt(KEY, refEncrypt(KEY, xml, CREDS.appId))).toEqual({ xml, appId: CREDS.appId });
    }
  });

  it('refDecrypt throws on bad padding, a short plaintext, a length past the end and non-canonical base64', () => {
    const header = (len: number): Buffer => Buffer.concat([Buffer.alloc(16, 7), Buffer.from([0, 0, 0, len])]);
    const pad0 = Buffer.concat([header(2), Buffer.from('ok'), Buffer.alloc(10, 0)]);
    expect(() => refDecrypt(KEY, rawEncrypt(pad0))).toThrow(/pad value 0/);
    const pad33 = Buffer.concat([header(0), Buffer.alloc(44, 33)]);
    expect(() => refDecrypt(KEY, rawEncrypt(pad33))).toThrow(/pad value 33/);
    const mixed = Buffer.concat([header(0), Buffer.alloc(9, 1), Buffer.from([2, 3, 3])]);
    expect(() => refDecrypt(KEY, rawEncrypt(mixed))).toThrow(/pad bytes differ/);
    const short = Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(22, 22)]);
    expect(() => refDecrypt(KEY, rawEncrypt(short))).toThrow(/shorter than its header/);
    const past = Buffer.concat([header(200), Buffer.from('abc'), Buffer.alloc(9, 9)]);
    expect(() => refDecrypt(KEY, rawEncrypt(past))).toThrow(/runs past/);
    const good = refEncrypt(KEY, '<xml/>', CREDS.appId);
    expect(() => refDecrypt(KEY, `${good.slice(0, -4)}!${good.slice(-4)}`)).toThrow(/canonical base64/);
    expect(() => refDecrypt(KEY, good.slice(0, 24))).toThrow(/multiple of 16/);
  });

  it("agrees with the server's WXBizMsgCrypt in both directions", () => {
    const key = parseEncodingAesKey(KEY);
    const xml = '<xml><Content><![CDATA[你好, world]]></Content></xml>';
    expect(decrypt(key, refEncrypt(KEY, xml, CREDS.appId))).toEqual({ message: xml, receiveid: CREDS.appId });
    expect(refDecrypt(KEY, encrypt(key, xml, CREDS.appId))).toEqual({ xml, appId: CREDS.appId });
    const e = refEncrypt(KEY, xml, CREDS.appId);
    expect(mpMsgSignature(CREDS.token, '1714037059', '486452656', e)).toBe(
      computeSignature(CREDS.token, '1714037059', '486452656', e),
    );
  });
});

const params = (query: string): Record<string, string> => Object.fromEntries(new URLSearchParams(query));

describe('push builders', () => {
  it('mpXml: strings in CDATA (split around ]]>), numbers and 64-bit MsgIds bare', () => {
    const f = textMsg(CREDS, USER, 'a]]>b', undefined, 1714037059);
    expect(f.MsgId).toMatch(/^[1-8]\d{18}$/);
    expect(BigInt(f.MsgId as string) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(mpXml(f)).toBe(
      `<xml><ToUserName><![CDATA[${CREDS.ghId}]]></ToUserName><FromUserName><![CDATA[${USER}]]></FromUserName>` +
        `<CreateTime>1714037059</CreateTime><MsgType><![CDATA[text]]></MsgType>` +
        `<Content><![CDATA[a]]]]><![CDATA[>b]]></Content><MsgId>${f.MsgId}</MsgId></xml>`,
    );
    expect(parseXml(mpXml(f)).Content).toBe('a]]>b');
    expect(voiceMsg(CREDS, USER, { recognition: '你好' })).toMatchObject({ MsgType: 'voice', Format: 'amr', Recognition: '你好' });
    expect(Object.keys(eventMsg(CREDS, USER, 'SCAN', { EventKey: '42', Ticket: 't', CreateTime: 5 }))).toEqual([
      'ToUserName', 'FromUserName', 'CreateTime', 'MsgType', 'Event', 'EventKey', 'Ticket',
    ]);
  });

  it('plaintext: the plain XML and a valid signature; no encryption parameters', () => {
    const f = textMsg(CREDS, USER, 'hi');
    const p = buildMpPush(CREDS, 'plaintext', f, { timestamp: '1714037059', nonce: '486452656' });
    const q = params(p.query);
    expect(Object.keys(q)).toEqual(['signature', 'timestamp', 'nonce', 'openid']);
    expect(q).toMatchObject({ timestamp: '1714037059', nonce: '486452656', openid: USER });
    expect(q.signature).toBe(mpSignature(CREDS.token, '1714037059', '486452656'));
    expect(p.body).toBe(mpXml(f));
  });

  it('compatible: plain fields plus Encrypt; safe: only ToUserName and Encrypt; both signed and decryptable', () => {
    const f = textMsg(CREDS, USER, '兼容');
    for (const mode of ['compatible', 'safe'] as const) {
      const p = buildMpPush(CREDS, mode, f);
      const q = params(p.query);
      expect(Object.keys(q)).toEqual(['signature', 'timestamp', 'nonce', 'openid', 'encrypt_type', 'msg_signature']);
      expect(q.encrypt_type).toBe('aes');
      expect(q.signature).toBe(mpSignature(CREDS.token, q.timestamp!, q.nonce!));
      const body = parseXml(p.body);
      const enc = body.Encrypt as string;
      expect(q.msg_signature).toBe(mpMsgSignature(CREDS.token, q.timestamp!, q.nonce!, enc));
      expect(refDecrypt(KEY, enc)).toEqual({ xml: mpXml(f), appId: CREDS.appId });
      const names = mode === 'safe' ? ['ToUserName', 'Encrypt'] : [...Object.keys(f), 'Encrypt'];
      expect(Object.keys(body)).toEqual(names);
    }
  });

  it('verification query carries signature, echostr, timestamp, nonce', () => {
    const q = params(buildMpVerifyQuery(CREDS.token, 'echo &=1', { timestamp: '1714037059', nonce: '486452656' }).query);
    const signature = mpSignature(CREDS.token, '1714037059', '486452656');
    expect(q).toEqual({ signature, echostr: 'echo &=1', timestamp: '1714037059', nonce: '486452656' });
  });
});

describe('openPassiveReply', () => {
  const inner = (from = CREDS.ghId): string =>
    `<xml><ToUserName><![CDATA[${USER}]]></ToUserName><FromUserName><![CDATA[${from}]]></FromUserName>` +
    `<CreateTime>1714037060</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[答 1\n2]]></Content></xml>`;
  const envelope = (xml: string, o: { sig?: string; tsName?: string; appId?: string } = {}): string => {
    const e = refEncrypt(KEY, xml, o.appId ?? CREDS.appId);
    const sig = o.sig ?? mpMsgSignature(CREDS.token, '1714037060', 'n0nce', e);
    const ts = o.tsName ?? 'TimeStamp';
    return `<xml><Encrypt><![CDATA[${e}]]></Encrypt><MsgSignature><![CDATA[${sig}]]></MsgSignature><${ts}>1714037060</${ts}><Nonce><![CDATA[n0nce]]></Nonce></xml>`;
  };

  it('opens a correct encrypted reply and reports a wrong MsgSignature', () => {
    const ok = openPassiveReply(CREDS, envelope(inner()), { encrypted: true, openid: USER });
    expect(ok).toMatchObject({ encrypted: true, signatureOk: true, timestamp: '1714037060', nonce: 'n0nce' });
    expect(ok.fields).toMatchObject({ ToUserName: USER, FromUserName: CREDS.ghId, MsgType: 'text', Content: '答 1\n2' });
    const bad = openPassiveReply(CREDS, envelope(inner(), { sig: 'f'.repeat(40) }), { encrypted: true });
    expect(bad.signatureOk).toBe(false);
  });

  it('rejects a Timestamp element, a foreign AppID, a wrong sender, success, and a plain reply to an encrypted push', () => {
    expect(() => openPassiveReply(CREDS, envelope(inner(), { tsName: 'Timestamp' }), { encrypted: true })).toThrow(
      /exactly Encrypt, MsgSignature, TimeStamp, Nonce/,
    );
    expect(() => openPassiveReply(CREDS, envelope(inner(), { appId: 'wxother' }), { encrypted: true })).toThrow(/AppID/);
    expect(() => openPassiveReply(CREDS, envelope(inner('gh_other')), { encrypted: true })).toThrow(/FromUserName/);
    expect(() => openPassiveReply(CREDS, 'success', { encrypted: false })).toThrow(/not a reply/);
    expect(() => openPassiveReply(CREDS, inner(), { encrypted: true })).toThrow(/exactly/);
    expect(() => openPassiveReply(CREDS, envelope(inner()), { encrypted: false })).toThrow(/plaintext push/);
    expect(() => openPassiveReply(CREDS, '{"Content":"json"}', { encrypted: false })).toThrow(/well-formed/);
  });

  it('opens a plaintext reply and flattens nested elements', () => {
    const img =
      `<xml><ToUserName><![CDATA[${USER}]]></ToUserName><FromUserName><![CDATA[${CREDS.ghId}]]></FromUserName>` +
      `<CreateTime>1</CreateTime><MsgType><![CDATA[image]]></MsgType><Image><MediaId><![CDATA[m1]]></MediaId></Image></xml>`;
    const r = openPassiveReply(CREDS, img, { encrypted: false, openid: USER });
    expect(r).toMatchObject({ encrypted: false, signatureOk: true, fields: { MsgType: 'image', 'Image.MediaId': 'm1' } });
    expect(() => openPassiveReply(CREDS, img, { encrypted: false, openid: 'oSomeoneElse' })).toThrow(/ToUserName/);
  });
});

describe('fake OA API', () => {
  let api: FakeMpApi;
  afterEach(() => api?.close());
  type Json = Record<string, unknown>;
  const call = async (path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST'): Promise<Json> => {
    const init = { method, ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }) };
    const r = await fetch(`${api.url}${path}`, init);
    return (r.status === 200 ? await r.json() : { status: r.status }) as Json;
  };
  const stable = (force?: boolean): Promise<Json> =>
    call('/cgi-bin/stable_token', { grant_type: 'client_credential', appid: CREDS.appId, secret: SECRET, force_refresh: force });
  const send = (token: string, body: Json | string): Promise<Json> => call(`/cgi-bin/message/custom/send?access_token=${token}`, body);
  const text = (content: string, touser = USER): Json => ({ touser, msgtype: 'text', text: { content } });
  const typing = (token: string, command: string): Promise<Json> =>
    call(`/cgi-bin/message/custom/typing?access_token=${token}`, { touser: USER, command });
  const codes = async (ps: Array<Promise<Json>>): Promise<unknown[]> => (await Promise.all(ps)).map((r) => r.errcode);

  it('classic token: credential errors, a ~140-char token without errcode, token errors on use', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET });
    const tok = (g: string, a: string, s: string): Promise<Json> => call(`/cgi-bin/token?grant_type=${g}&appid=${a}&secret=${s}`);
    expect(await codes([tok('x', CREDS.appId, SECRET), tok('client_credential', 'wxno', SECRET)])).toEqual([40002, 40013]);
    expect((await tok('client_credential', CREDS.appId, 'no')).errcode).toBe(40001);
    const ok = await tok('client_credential', CREDS.appId, SECRET);
    expect(Object.keys(ok)).toEqual(['access_token', 'expires_in']);
    expect((ok.access_token as string).length).toBeGreaterThan(130);
    api.userInteracted(USER);
    expect(await codes([send('', text('a')), send('nope', text('a')), send(ok.access_token as string, text('a'))])).toEqual([41001, 40014, 0]);
    api.expireAccessTokens();
    expect((await send(ok.access_token as string, text('a'))).errcode).toBe(42001);
    expect(api.tokenFetches()).toBe(1);
    expect((await call('/cgi-bin/stable_token', '{nope')).errcode).toBe(47001);
    expect(await codes([call('/cgi-bin/stable_token'), call('/cgi-bin/token', {})])).toEqual([43002, 43001]);
    expect((await call('/cgi-bin/material/add_material', {})).status).toBe(404);
  });

  it('stable_token: same token twice; force_refresh invalidates it (40001); a second force within 30 s is 45011', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET });
    const a = await stable();
    const b = await stable();
    expect(b.access_token).toBe(a.access_token);
    const forced = await stable(true);
    expect(forced.access_token).not.toBe(a.access_token);
    api.userInteracted(USER);
    expect((await send(a.access_token as string, text('old'))).errcode).toBe(40001);
    expect((await send(forced.access_token as string, text('new'))).errcode).toBe(0);
    expect((await stable(true)).errcode).toBe(45011);
    expect((await stable()).access_token).toBe(forced.access_token);
    expect(api.stableTokenRequests.map((r) => [r.force_refresh, r.errcode])).toEqual([
      [false, 0], [false, 0], [true, 0], [true, 45011], [false, 0],
    ]);
    expect(api.tokenFetches()).toBe(4);
  });

  it('custom/send: 45015 without interaction, 5 sends then 45047, size/type/format/authorization errors', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET });
    const t = (await stable()).access_token as string;
    expect((await send(t, text('hi'))).errcode).toBe(45015);
    api.userInteracted(USER);
    expect((await send(t, text('x'.repeat(2049)))).errcode).toBe(45002);
    expect((await send(t, text('中'.repeat(683)))).errcode).toBe(45002); // 2049 bytes
    expect(await codes([send(t, text('')), send(t, { touser: USER, msgtype: 'markdown' }), send(t, text('a', ''))])).toEqual([44004, 40008, 40003]);
    for (let i = 0; i < 5; i += 1) expect((await send(t, text(i === 0 ? 'x'.repeat(2048) : `m${i}`))).errcode).toBe(0);
    expect((await send(t, text('sixth'))).errcode).toBe(45047);
    expect(api.sent.map((s) => s.content?.slice(0, 2))).toEqual(['xx', 'm1', 'm2', 'm3', 'm4']);
    api.userInteracted(USER, 'click');
    for (let i = 0; i < 3; i += 1) expect((await send(t, text(`c${i}`))).errcode).toBe(0);
    expect((await send(t, text('c3'))).errcode).toBe(45047);
    api.userInteracted(USER, 'subscribe', Date.now() - 61_000);
    expect((await send(t, text('late'))).errcode).toBe(45015);
    api.userInteracted(USER, 'message', Date.now() - 48 * 3600_000 - 1000);
    expect((await send(t, text('late'))).errcode).toBe(45015);
    api.userInteracted(USER);
    api.unfollow(USER);
    expect((await send(t, text('gone'))).errcode).toBe(45015);
    api.userInteracted(USER);
    api.setUnauthorized(true);
    expect((await send(t, text('hi'))).errcode).toBe(48001);
    api.setUnauthorized(false);
    expect((await send(t, 'not json')).errcode).toBe(47001);
    expect((await send(t, { touser: USER, msgtype: 'msgmenu', msgmenu: { head_content: 'h', list: [] } })).errcode).toBe(0);
  });

  it('custom/typing: 45080 without a recent interaction, 45081 while active, 45072 bad command; a send clears it', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET });
    const t = (await stable()).access_token as string;
    api.userInteracted(USER, 'message', Date.now() - 31_000);
    expect((await typing(t, 'Typing')).errcode).toBe(45080);
    api.userInteracted(USER);
    expect(await codes([typing(t, 'typing')])).toEqual([45072]);
    expect((await typing(t, 'Typing')).errcode).toBe(0);
    expect((await typing(t, 'Typing')).errcode).toBe(45081);
    expect((await typing(t, 'CancelTyping')).errcode).toBe(0);
    expect((await typing(t, 'Typing')).errcode).toBe(0);
    expect((await send(t, text('answer'))).errcode).toBe(0);
    expect((await typing(t, 'Typing')).errcode).toBe(0);
    expect(api.typing.map((r) => [r.command, r.errcode])).toEqual([
      ['Typing', 45080], ['typing', 45072], ['Typing', 0], ['Typing', 45081], ['CancelTyping', 0], ['Typing', 0], ['Typing', 0],
    ]);
  });

  it('failNext answers first; setDelay holds only the answer; waitFor rejects clearly', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET });
    api.failNext('stable_token', -1, 2);
    expect(await codes([stable(), stable()])).toEqual([-1, -1]);
    const t = (await stable()).access_token as string;
    api.userInteracted(USER);
    api.setDelay('custom_send', 150);
    const started = performance.now();
    const pending = send(t, text('slow'));
    await api.waitFor(() => api.sent.length === 1, 100); // recorded at arrival, before the answer
    expect((await pending).errcode).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await expect(api.waitFor(() => false, 30)).rejects.toThrow(/timed out after 30 ms/);
  });
});

describe('fake OA API: temporary media', () => {
  let api: FakeMpApi;
  afterEach(() => api?.close());
  type Json = Record<string, unknown>;
  interface Part {
    name?: string;
    bytes: Buffer | string;
    filename?: string;
    contentType?: string;
  }
  const MB = 1024 * 1024;
  const bytes = (n: number): Buffer => Buffer.alloc(n, 9);
  async function token(): Promise<string> {
    const r = await fetch(`${api.url}/cgi-bin/stable_token`, {
      method: 'POST',
      body: JSON.stringify({ grant_type: 'client_credential', appid: CREDS.appId, secret: SECRET }),
    });
    return ((await r.json()) as Json).access_token as string;
  }
  async function upload(t: string, type: string | undefined, parts: Part[]): Promise<Json> {
    const fd = new FormData();
    for (const p of parts) {
      if (typeof p.bytes === 'string' && p.filename === undefined) fd.append(p.name ?? 'media', p.bytes);
      else fd.append(p.name ?? 'media', new Blob([p.bytes], { type: p.contentType ?? '' }), p.filename ?? '');
    }
    const q = new URLSearchParams({ access_token: t, ...(type !== undefined && { type }) });
    const r = await fetch(`${api.url}/cgi-bin/media/upload?${q}`, { method: 'POST', body: fd });
    expect(r.status).toBe(200);
    return (await r.json()) as Json;
  }
  async function get(t: string, mediaId: string): Promise<{ type: string; disposition: string; body: Buffer }> {
    const r = await fetch(`${api.url}/cgi-bin/media/get?access_token=${t}&media_id=${encodeURIComponent(mediaId)}`);
    expect(r.status).toBe(200);
    return {
      type: r.headers.get('content-type') ?? '',
      disposition: r.headers.get('content-disposition') ?? '',
      body: Buffer.from(await r.arrayBuffer()),
    };
  }
  const send = async (t: string, body: Json): Promise<Json> => {
    const r = await fetch(`${api.url}/cgi-bin/message/custom/send?access_token=${t}`, { method: 'POST', body: JSON.stringify(body) });
    return (await r.json()) as Json;
  };
  const codes = async (ps: Array<Promise<Json>>): Promise<unknown[]> => (await Promise.all(ps)).map((r) => r.errcode);

  it('uploads an image (created_at a number, no errcode), serves it back, and sends it with custom/send', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET });
    const t = await token();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2]);
    const before = Math.floor(Date.now() / 1000);
    const up = await upload(t, 'image', [{ bytes: png, filename: 'answer.png', contentType: 'image/png' }]);
    expect(Object.keys(up)).toEqual(['type', 'media_id', 'created_at']);
    expect(up.type).toBe('image');
    expect(up.media_id).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(typeof up.created_at).toBe('number');
    expect(up.created_at as number).toBeGreaterThanOrEqual(before);
    expect(api.uploads).toEqual([
      { type: 'image', media_id: up.media_id, filename: 'answer.png', contentType: 'image/png', bytes: png, at: expect.any(Number) as number },
    ]);
    expect(api.calls.at(-1)).toMatchObject({
      api: 'media_upload', errcode: 0, body: { parts: [{ name: 'media', filename: 'answer.png', contentType: 'image/png', size: 11 }] },
    });
    const got = await get(t, up.media_id as string);
    expect(got).toMatchObject({ type: 'image/png', disposition: 'attachment; filename="answer.png"' });
    expect(got.body.equals(png)).toBe(true);

    api.userInteracted(USER);
    const image = (media_id: unknown): Json => ({ touser: USER, msgtype: 'image', image: { media_id } });
    expect(await codes([send(t, image('unknown')), send(t, image(undefined)), send(t, { touser: USER, msgtype: 'image' })])).toEqual([40007, 40007, 40007]);
    expect((await send(t, image(up.media_id))).errcode).toBe(0);
    const voiceId = api.addMedia(Buffer.from('#!AMR\n....'), 'audio/amr', 'v.amr');
    expect((await send(t, { touser: USER, msgtype: 'voice', voice: { media_id: voiceId } })).errcode).toBe(0);
    expect(api.sent.map((m) => [m.msgtype, m.media_id])).toEqual([['image', up.media_id], ['voice', voiceId]]);
    expect((await get(t, voiceId)).type).toBe('audio/amr');
  });

  it('refuses bad tokens, types, bodies, extensions and sizes with the OA error codes', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET });
    const t = await token();
    const ok: Part = { bytes: bytes(100), filename: 'a.jpg', contentType: 'image/jpeg' };
    expect(await codes([upload('', 'image', [ok]), upload('bogus', 'image', [ok])])).toEqual([41001, 40014]);
    expect(await codes([upload(t, undefined, [ok]), upload(t, 'file', [ok])])).toEqual([40004, 40004]);
    const json = await fetch(`${api.url}/cgi-bin/media/upload?access_token=${t}&type=image`, { method: 'POST', body: '{"media":1}' });
    expect(((await json.json()) as Json).errcode).toBe(41005);
    expect(await codes([upload(t, 'image', [{ ...ok, name: 'file' }]), upload(t, 'image', [ok, ok])])).toEqual([41005, 47001]);
    expect(await codes([
      upload(t, 'image', [{ bytes: 'a field, no file name' }]),
      upload(t, 'image', [{ ...ok, filename: 'a.webp' }]),
      upload(t, 'voice', [{ bytes: bytes(10), filename: 'v.wav' }]),
      upload(t, 'thumb', [{ bytes: bytes(10), filename: 't.png' }]),
    ])).toEqual([40005, 40005, 40005, 40005]);
    expect((await upload(t, 'image', [{ ...ok, bytes: Buffer.alloc(0) }])).errcode).toBe(44001);
    expect(await codes([
      upload(t, 'image', [{ ...ok, bytes: bytes(2 * MB) }]),
      upload(t, 'image', [{ ...ok, bytes: bytes(2 * MB + 1) }]),
      upload(t, 'voice', [{ bytes: bytes(2 * MB + 1), filename: 'v.mp3' }]),
      upload(t, 'video', [{ bytes: bytes(10 * MB + 1), filename: 'v.mp4' }]),
      upload(t, 'thumb', [{ bytes: bytes(64 * 1024 + 1), filename: 't.jpg' }]),
    ])).toEqual([undefined, 40009, 40010, 40011, 40012]);
    const thumb = await upload(t, 'thumb', [{ bytes: bytes(64 * 1024), filename: 't.jpg', contentType: 'image/jpeg' }]);
    expect(Object.keys(thumb)).toEqual(['type', 'thumb_media_id', 'created_at']);
    expect((await get(t, thumb.thumb_media_id as string)).body.length).toBe(64 * 1024);
    api.setUnauthorized(true);
    expect((await upload(t, 'image', [ok])).errcode).toBe(48001);
    api.setUnauthorized(false);
    api.failNext('media_upload', 45009);
    expect((await upload(t, 'image', [ok])).errcode).toBe(45009);
    expect(api.uploads.map((u) => u.type)).toEqual(['image', 'thumb']);
  });

  it('media/get answers JSON 40007 for unknown and 3-day-old media; token errors too', async () => {
    api = await startFakeMpApi({ appId: CREDS.appId, appSecret: SECRET, tokenTtlS: 10 * 86400 });
    const t = await token();
    const miss = await fetch(`${api.url}/cgi-bin/media/get?access_token=${t}&media_id=nope`);
    expect(miss.status).toBe(200);
    expect(miss.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    expect(((await miss.json()) as Json).errcode).toBe(40007);
    const noToken = await fetch(`${api.url}/cgi-bin/media/get?media_id=nope`);
    expect(((await noToken.json()) as Json).errcode).toBe(41001);
    const asPost = await fetch(`${api.url}/cgi-bin/media/get?access_token=${t}&media_id=nope`, { method: 'POST', body: '{}' });
    expect(((await asPost.json()) as Json).errcode).toBe(43001);
    const id = api.addMedia(Buffer.from('GIF89a....'), 'image/gif', 'anim.gif');
    expect((await get(t, id)).body.toString()).toBe('GIF89a....');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 3 * 86400_000 + 1000);
      expect(JSON.parse((await get(t, id)).body.toString()) as Json).toMatchObject({ errcode: 40007 });
      api.userInteracted(USER);
      expect((await send(t, { touser: USER, msgtype: 'image', image: { media_id: id } })).errcode).toBe(40007);
    } finally {
      vi.useRealTimers();
    }
    expect(api.calls.filter((c) => c.api === 'media_get').map((c) => c.errcode)).toEqual([40007, 41001, 43001, 0, 40007]);
  });
});

describe('deliverLikeWechat', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
  /** A local callback server: `answer(n)` gives [delay ms, status, body] for the n-th request (1-based). */
  async function serve(answer: (n: number) => [number, number, string]): Promise<{ url: string; seen: Array<Record<string, unknown>> }> {
    const seen: Array<Record<string, unknown>> = [];
    const s = http.createServer((req, res) => {
      seen.push({ type: req.headers['content-type'], ...params(req.url!.split('?')[1] ?? '') });
      const [ms, status, body] = answer(seen.length);
      setTimeout(() => void (!res.destroyed && res.writeHead(status).end(body)), ms);
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen };
  }
  const push = (attempt: number) => buildMpPush(CREDS, 'safe', textMsg(CREDS, USER, 'hi', '1234567890123456789'), { nonce: `${attempt}00` });

  it('cuts every attempt of a server slower than the deadline: 3 attempts ~100 ms apart, no answer', async () => {
    const { url, seen } = await serve(() => [150, 200, 'success']);
    const r = await deliverLikeWechat(url, '/wechat/mp/callback', push, { deadlineMs: 100 });
    expect(r.answered).toBeNull();
    expect(r.attempts.map((a) => [a.status, a.cut])).toEqual([[null, true], [null, true], [null, true]]);
    const starts = r.attempts.map((a) => a.startedMs);
    expect([starts[1]! - starts[0]!, starts[2]! - starts[1]!].every((gap) => gap >= 99 && gap < 200)).toBe(true);
    expect(seen.map((s) => [s.type, s.nonce, s.encrypt_type])).toEqual([
      ['text/xml', '100', 'aes'], ['text/xml', '200', 'aes'], ['text/xml', '300', 'aes'],
    ]);
  });

  it('stops at the first 200 and retries after a 503 at the next slot', async () => {
    const quick = await serve(() => [0, 200, '']);
    const r1 = await deliverLikeWechat(quick.url, '/cb', push, { deadlineMs: 100 });
    expect(r1.attempts).toHaveLength(1);
    expect(r1.answered).toEqual({ status: 200, body: '', attempt: 1 });
    const flaky = await serve((n) => (n === 1 ? [0, 503, 'busy'] : [0, 200, 'success']));
    const r2 = await deliverLikeWechat(flaky.url, '/cb', push, { deadlineMs: 100 });
    expect(r2.attempts.map((a) => [a.status, a.body, a.cut])).toEqual([[503, 'busy', false], [200, 'success', false]]);
    // Node timers may fire a millisecond early against performance.now(): the slot, not the exact ms, is the point.
    expect(r2.attempts[1]!.startedMs).toBeGreaterThanOrEqual(95);
    expect(r2.answered).toEqual({ status: 200, body: 'success', attempt: 2 });
  });
});
