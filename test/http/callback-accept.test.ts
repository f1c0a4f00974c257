/**
 * What the kf callback routes accept, over a real socket: valid POSTs under every Content-Type, the body-size
 * boundary, URL verification (including a raw `+` in echostr), non-kf events, the skew switch, /healthz,
 * /metrics, and 404 when the channel is not configured (docs/configuration.md "HTTP routes").
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { computeSignature, encrypt, parseEncodingAesKey } from '../../src/crypto/wxbizmsgcrypt.js';
import { createDeps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import { buildKfCallback, buildVerifyUrlQuery, postCallback } from '../fakes/wecom-kf.js';
import { CREDS, LogSink, OPEN_KFID, sleep, startHarness, type Harness } from '../helpers/harness.js';

const PATH = '/wecom/kf/callback';
const AES = parseEncodingAesKey(CREDS.encodingAesKey);
const SECRET_VALUES = [CREDS.kfSecret, CREDS.token, CREDS.encodingAesKey];

let h: Harness;
/** Logs of every server this file started, checked for secrets at the end. */
const allLogs: string[][] = [];

beforeAll(async () => {
  h = await startHarness({ env: { LOG_LEVEL: 'debug' } });
  allLogs.push(h.logs.raw);
});
afterAll(async () => h?.close());

/** Starts an extra harness for one test and always closes it. */
async function withHarness(env: Record<string, string>, fn: (x: Harness) => Promise<void>): Promise<void> {
  const x = await startHarness({ env: { LOG_LEVEL: 'debug', ...env } });
  allLogs.push(x.logs.raw);
  try {
    await fn(x);
  } finally {
    await x.close();
  }
}

/** A raw request (node:http, no keep-alive); `contentType: null` sends no Content-Type header at all. */
function send(
  url: string,
  o: { query: string; body?: string; method?: 'GET' | 'POST'; contentType?: string | null },
): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  const method = o.method ?? 'POST';
  const payload = Buffer.from(o.body ?? '', 'utf8');
  const headers: Record<string, string | number> = {};
  if (method === 'POST') {
    headers['content-length'] = payload.length;
    if (o.contentType !== null) headers['content-type'] = o.contentType ?? 'text/xml';
  }
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${PATH}?${o.query}`, { method, agent: false, headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks), headers: r.headers }));
      r.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? payload : undefined);
  });
}

const nowS = () => Math.floor(Date.now() / 1000);
const syncCallsFor = (x: Harness, openKfid: string) =>
  x.fake.calls.filter((c) => c.api === 'sync_msg' && (c.body as { open_kfid?: string } | null)?.open_kfid === openKfid);

/** `success` as the whole body, and a pull of `openKfid` reaches the fake. */
async function expectAccepted(x: Harness, res: { status: number; body: Buffer | string }, openKfid: string): Promise<void> {
  expect({ status: res.status, body: res.body.toString() }).toEqual({ status: 200, body: 'success' });
  await x.fake.waitFor(() => syncCallsFor(x, openKfid).length > 0, 5000);
}

describe('POST: a valid callback', () => {
  it('is answered 200 `success` and a sync_msg with its Token and open_kfid reaches WeCom', async () => {
    const token = h.fake.issueSyncToken();
    const res = await postCallback(h.url, PATH, buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: token }));
    await expectAccepted(h, res, OPEN_KFID);
    const call = syncCallsFor(h, OPEN_KFID)[0]!;
    expect(call.body).toMatchObject({ open_kfid: OPEN_KFID, token });
    expect(call.errcode).toBe(0);
  });

  it('is read whatever its Content-Type, and with none at all', async () => {
    const types = ['text/xml', 'application/xml', 'text/plain', 'application/x-www-form-urlencoded', 'text/xml; charset=utf-8', null];
    for (const [i, contentType] of types.entries()) {
      const openKfid = `wkContentType${i}AAAAAAAAAAAAAAAAAA`;
      const cb = buildKfCallback(CREDS, { open_kfid: openKfid, syncToken: h.fake.issueSyncToken() });
      const res = await send(h.url, { ...cb, contentType });
      await expectAccepted(h, res, openKfid);
    }
  });

  it('a body of exactly MAX_BODY_BYTES is accepted', async () => {
    const openKfid = 'wkExactLimitAAAAAAAAAAAAAAAAAAAA';
    const cb = buildKfCallback(CREDS, { open_kfid: openKfid, syncToken: h.fake.issueSyncToken() });
    const filler = h.config.maxBodyBytes - Buffer.byteLength(cb.body) - '<Padding></Padding>'.length;
    const body = cb.body.replace('</xml>', `<Padding>${'p'.repeat(filler)}</Padding></xml>`);
    expect(Buffer.byteLength(body)).toBe(65536);
    await expectAccepted(h, await send(h.url, { query: cb.query, body }), openKfid);
  });

  it('a nonce of exactly 128 characters and a timestamp 299 s old are accepted', async () => {
    const openKfid = 'wkBoundaryAAAAAAAAAAAAAAAAAAAAAA';
    const ts = String(nowS() - 299);
    const inner =
      `<xml><ToUserName><![CDATA[${CREDS.corpId}]]></ToUserName><CreateTime>${ts}</CreateTime>` +
      `<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>` +
      `<OpenKfId><![CDATA[${openKfid}]]></OpenKfId></xml>`;
    const enc = encrypt(AES, inner, CREDS.corpId);
    const nonce = '9'.repeat(128);
    const query = `msg_signature=${computeSignature(CREDS.token, ts, nonce, enc)}&timestamp=${ts}&nonce=${nonce}`;
    const res = await send(h.url, { query, body: `<xml><Encrypt><![CDATA[${enc}]]></Encrypt></xml>` });
    await expectAccepted(h, res, openKfid);
  });

  it('a non-kf event is answered `success` and nothing is pulled or stored', async () => {
    await withHarness({}, async (x) => {
      const inner = '<xml><MsgType>event</MsgType><Event>change_external_contact</Event></xml>';
      const enc = encrypt(AES, inner, CREDS.corpId);
      const ts = String(nowS());
      const query = `msg_signature=${computeSignature(CREDS.token, ts, '123', enc)}&timestamp=${ts}&nonce=123`;
      const res = await send(x.url, { query, body: `<xml><Encrypt><![CDATA[${enc}]]></Encrypt></xml>` });
      expect({ status: res.status, body: res.body.toString() }).toEqual({ status: 200, body: 'success' });
      await sleep(150);
      expect(await x.deps.store.listWanted('kf:pulls-wanted')).toEqual([]);
      expect(x.fake.calls).toEqual([]);
      const metrics = await (await fetch(`${x.url}/metrics`)).text();
      expect(metrics).toMatch(/bridge_callbacks_total\{channel="kf",outcome="ignored"\} 1/);
    });
  });

  it('a stale timestamp is refused with the default skew and accepted with CALLBACK_MAX_SKEW_S=0', async () => {
    const stale = (x: Harness, openKfid: string) =>
      buildKfCallback(CREDS, { open_kfid: openKfid, syncToken: x.fake.issueSyncToken(), timestamp: nowS() - 301 });
    const refused = await postCallback(h.url, PATH, stale(h, 'wkStaleAAAAAAAAAAAAAAAAAAAAAAAAA'));
    expect(refused.status).toBe(401);
    await withHarness({ CALLBACK_MAX_SKEW_S: '0' }, async (x) => {
      expect(x.config.callbackMaxSkewS).toBe(0);
      const openKfid = 'wkNoSkewAAAAAAAAAAAAAAAAAAAAAAAA';
      await expectAccepted(x, await postCallback(x.url, PATH, stale(x, openKfid)), openKfid);
      const ancient = buildKfCallback(CREDS, { open_kfid: openKfid, syncToken: 'x', timestamp: 1_000_000_000 });
      expect((await postCallback(x.url, PATH, ancient)).status).toBe(200);
    });
  });
});

describe('GET: URL verification', () => {
  const expectEcho = (res: { status: number; body: Buffer; headers: http.IncomingHttpHeaders }, plain: string) => {
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body.equals(Buffer.from(plain, 'utf8'))).toBe(true); // no quotes, BOM or newline
  };

  it('answers exactly the decrypted echostr as text/plain', async () => {
    for (const plain of ['1616140317555161061', 'echo-Ünïcödé-回声']) {
      expectEcho(await send(h.url, { method: 'GET', ...buildVerifyUrlQuery(CREDS, plain) }), plain);
    }
  });

  it('keeps a raw, unencoded `+` in echostr (and accepts it percent-encoded too)', async () => {
    let plain = '';
    let echostr = '';
    for (let i = 0; !echostr.includes('+'); i++) {
      if (i > 1000) throw new Error('no ciphertext with "+" in 1000 tries');
      plain = `${5_000_000_000_000 + i}`;
      echostr = encrypt(AES, plain, CREDS.corpId);
    }
    const ts = String(nowS());
    const signedPart = `msg_signature=${computeSignature(CREDS.token, ts, '777', echostr)}&timestamp=${ts}&nonce=777`;
    // raw: `+`, `/` and `=` exactly as base64 has them, nothing percent-encoded
    expectEcho(await send(h.url, { method: 'GET', query: `${signedPart}&echostr=${echostr}` }), plain);
    expectEcho(await send(h.url, { method: 'GET', query: `${signedPart}&echostr=${encodeURIComponent(echostr)}` }), plain);
    // the `+` read as a space would be a different (unsigned) value
    const asSpace = await send(h.url, { method: 'GET', query: `${signedPart}&echostr=${echostr.replaceAll('+', '%20')}` });
    expect(asSpace.status).toBe(401);
  });

  it('does not apply the POST timestamp window, and refuses a wrong signature with 401', async () => {
    const plain = '4242424242';
    const echostr = encrypt(AES, plain, CREDS.corpId);
    const ts = String(nowS() - 86_400);
    const sig = computeSignature(CREDS.token, ts, '1', echostr);
    const q = (s: string) => `msg_signature=${s}&timestamp=${ts}&nonce=1&echostr=${encodeURIComponent(echostr)}`;
    expectEcho(await send(h.url, { method: 'GET', query: q(sig) }), plain);
    const wrong = await send(h.url, { method: 'GET', query: q(sig.replace(/^./, sig[0] === 'a' ? 'b' : 'a')) });
    expect(wrong.status).toBe(401);
    expect(wrong.body.toString()).not.toContain(plain);
  });
});

describe('service routes', () => {
  it('/healthz is 200', async () => {
    const res = await fetch(`${h.url}/healthz`);
    expect(res.status).toBe(200);
  });

  it('/metrics exposes the callback counter (incl. unauthorized) and the ack histogram', async () => {
    const bad = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: 'x' });
    const res401 = await postCallback(h.url, PATH, { ...bad, query: bad.query.replace(/msg_signature=[0-9a-f]/, 'msg_signature=g') });
    expect(res401.status).toBe(401);
    const res = await fetch(`${h.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^bridge_callbacks_total\{channel="kf",outcome="unauthorized"\} [1-9]\d*$/m);
    expect(text).toMatch(/^bridge_callbacks_total\{channel="kf",outcome="accepted"\} [1-9]\d*$/m);
    expect(text).toMatch(/^bridge_callbacks_total\{channel="kf",outcome="verified"\} [1-9]\d*$/m);
    expect(text).toMatch(/^# TYPE bridge_ack_duration_seconds histogram$/m);
    expect(text).toMatch(/^bridge_ack_duration_seconds_bucket\{le="[^"]+",channel="kf"\} \d+$/m);
    expect(text).toMatch(/^bridge_ack_duration_seconds_count\{channel="kf"\} [1-9]\d*$/m);
  });

  it('without the kf variables the kf routes answer 404 and the rest still works', async () => {
    const config = loadConfig({ LOG_LEVEL: 'silent' });
    expect(config.kf).toBeNull();
    const logs = new LogSink();
    const deps = await createDeps(config, createLogger('debug', logs), { defaultMetrics: false });
    const app = buildApp(deps.app);
    allLogs.push(logs.raw);
    try {
      const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: 'x' });
      const post = await app.inject({ method: 'POST', url: `${PATH}?${cb.query}`, payload: cb.body, headers: { 'content-type': 'text/xml' } });
      expect(post.statusCode).toBe(404);
      expect(post.headers['content-type']).toMatch(/^text\/plain/);
      const get = await app.inject({ method: 'GET', url: `${PATH}?${buildVerifyUrlQuery(CREDS, '1').query}` });
      expect(get.statusCode).toBe(404);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
      expect(await deps.store.listWanted('kf:pulls-wanted')).toEqual([]);
    } finally {
      await app.close();
      await deps.close(1000);
    }
  });
});

describe('after everything above', () => {
  it('no log line of any server holds the kf secret, the Token or the EncodingAESKey', () => {
    const all = allLogs.flat().join('\n');
    expect(allLogs.flat().length).toBeGreaterThan(0);
    for (const s of SECRET_VALUES) expect(all).not.toContain(s);
  });
});
