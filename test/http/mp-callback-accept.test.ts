/**
 * What the Official Account routes accept, over a real socket: pushes in every mode under any Content-Type, the
 * body-size and parameter-length boundaries, a raw `+` in the query, the skew switch, compatible mode trusting
 * only its decrypted part (and never `openid`), GET server verification, and 404 when the channel is not
 * configured (docs/configuration.md "HTTP routes", docs/protocols.md OA §2–§5).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createDeps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import { startFakeWecom } from '../fakes/wecom-kf.js';
import { buildMpPush, buildMpVerifyQuery, textMsg } from '../fakes/wechat-mp-push.js';
import { mpSignature } from '../fakes/wechat-mp-reference-crypto.js';
import { CREDS, LogSink, kfEnv } from '../helpers/harness.js';
import { MODES, MP, MP_PATH, MP_SECRET, passiveText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';

const MAX = 4096;
const SECRETS = [MP.token, MP.encodingAesKey, MP_SECRET];

let h: MpHarness;
const allLogs: string[][] = [];

beforeAll(async () => {
  h = await startMpHarness({ env: { MAX_BODY_BYTES: String(MAX), LOG_LEVEL: 'debug' } });
  allLogs.push(h.logs.raw);
});
afterAll(async () => h?.close());

/** Starts an extra server for one test and always closes it. */
async function withHarness(env: Record<string, string>, fn: (x: MpHarness) => Promise<void>): Promise<void> {
  const x = await startMpHarness({ env: { LOG_LEVEL: 'debug', ...env } });
  allLogs.push(x.logs.raw);
  try {
    await fn(x);
  } finally {
    await x.close();
  }
}

type Res = { status: number; body: string; type: string | undefined };
/** A raw request (node:http, no keep-alive); `contentType: null` sends no Content-Type header at all. */
function send(url: string, o: { query: string; body?: string; method?: 'GET' | 'POST'; contentType?: string | null }): Promise<Res> {
  const method = o.method ?? 'POST';
  const payload = Buffer.from(o.body ?? '', 'utf8');
  const headers: Record<string, string | number> = {};
  if (method === 'POST') {
    headers['content-length'] = payload.length;
    if (o.contentType !== null) headers['content-type'] = o.contentType ?? 'text/xml';
  }
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${MP_PATH}?${o.query}`, { method, agent: false, headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), type: r.headers['content-type'] }));
      r.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? payload : undefined);
  });
}

const nowS = () => Math.floor(Date.now() / 1000);
const sentTo = (x: MpHarness, openid: string) => x.api.sent.filter((s) => s.touser === openid).map((s) => s.content);
/** 200 `success`, then the echo of `content` reaches custom/send for `openid` (and nothing else does). */
async function expectAnswered(x: MpHarness, res: Res, openid: string, content: string): Promise<void> {
  expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: 'success' });
  await x.api.waitFor(() => sentTo(x, openid).length > 0);
  expect(sentTo(x, openid)).toEqual([content]);
}
/** A fresh customer who has just written (the fake opens the send window). */
let users = 0;
const customer = (x: MpHarness = h): string => {
  const openid = `oAcceptUser${String((users += 1)).padStart(4, '0')}_abcdefgh`;
  x.api.userInteracted(openid);
  return openid;
};
const pad = (body: string, bytes: number) => body.replace(/<\/xml>$/, `${' '.repeat(bytes - Buffer.byteLength(body))}</xml>`);

describe('POST: valid pushes', () => {
  for (const mode of MODES) {
    it(`${mode}: read whatever the Content-Type, and with none at all`, async () => {
      for (const contentType of ['text/xml', 'application/xml', 'text/plain', 'text/xml; charset=utf-8', 'application/json', null]) {
        const openid = customer();
        const text = `类型 ${String(contentType)} ${mode}`;
        await expectAnswered(h, await send(h.urlFor(mode), { ...buildMpPush(MP, mode, textMsg(MP, openid, text)), contentType }), openid, text);
      }
    });

    it(`${mode}: a body of exactly MAX_BODY_BYTES`, async () => {
      const openid = customer();
      const push = buildMpPush(MP, mode, textMsg(MP, openid, `刚好 ${mode}`));
      const body = pad(push.body, MAX);
      expect(Buffer.byteLength(body)).toBe(MAX);
      await expectAnswered(h, await send(h.urlFor(mode), { query: push.query, body }), openid, `刚好 ${mode}`);
    });

    it(`${mode}: a nonce and an openid of exactly 128 characters, and a timestamp 299 s old`, async () => {
      const openid = customer();
      const push = buildMpPush(MP, mode, textMsg(MP, openid, `边界 ${mode}`), {
        nonce: '9'.repeat(128),
        openid: 'o'.repeat(128),
        timestamp: String(nowS() - 299),
      });
      await expectAnswered(h, await send(h.urlFor(mode), push), openid, `边界 ${mode}`);
    });

    it(`${mode}: a raw \`+\` in a query value is kept (and %2B decodes to it); read as a space it is refused`, async () => {
      // A fresh nonce per push, as WeChat sends: a plaintext (timestamp, nonce) pair used with another body is a replay.
      const nonce = (k: string) => `12+34/5${k}=`;
      const make = (openid: string, k: string) => buildMpPush(MP, mode, textMsg(MP, openid, `加号 ${mode}`), { nonce: nonce(k) });
      const openid = customer();
      const p = make(openid, '6');
      expect(p.query).toContain('nonce=12%2B34%2F56%3D');
      await expectAnswered(h, await send(h.urlFor(mode), { query: p.query.replace('nonce=12%2B34%2F56%3D', `nonce=${nonce('6')}`), body: p.body }), openid, `加号 ${mode}`);
      const encoded = customer();
      await expectAnswered(h, await send(h.urlFor(mode), make(encoded, '7')), encoded, `加号 ${mode}`);
      const space = make(customer(), '8');
      const res = await send(h.urlFor(mode), { query: space.query.replace('nonce=12%2B34', 'nonce=12%2034'), body: space.body });
      expect({ status: res.status, body: res.body }).toEqual({ status: 401, body: 'signature mismatch' });
    });

    it(`${mode}: the answer goes to FromUserName, never to the query's openid`, async () => {
      const openid = customer();
      const decoy = customer();
      const push = buildMpPush(MP, mode, textMsg(MP, openid, `给谁 ${mode}`), { openid: decoy });
      expect(push.query).toContain(`openid=${decoy}`);
      await expectAnswered(h, await send(h.urlFor(mode), push), openid, `给谁 ${mode}`);
      expect(h.api.calls.filter((c) => c.api === 'custom_send' && c.body?.touser === decoy)).toEqual([]);
    });
  }

  it('compatible: only the encrypted part is trusted (plain Content, FromUserName and MsgId are forgeries)', async () => {
    const real = customer();
    const forged = customer();
    const fields = textMsg(MP, real, '真的');
    const push = buildMpPush(MP, 'compatible', fields, { openid: forged });
    const body = push.body
      .replace('<![CDATA[真的]]>', '<![CDATA[伪造]]>')
      .replace(`<![CDATA[${real}]]>`, `<![CDATA[${forged}]]>`)
      .replace(`<MsgId>${fields.MsgId}</MsgId>`, '<MsgId>1234567890123456789</MsgId>');
    expect(body).toMatch(/伪造.*<Encrypt>/);
    expect(body).not.toContain(`<![CDATA[${real}]]>`);
    await expectAnswered(h, await send(h.url, { query: push.query, body }), real, '真的');
    expect(sentTo(h, forged)).toEqual([]);
  });

  it('compatible, passive mode: the encrypted passive reply answers the decrypted message and its FromUserName', async () => {
    await withHarness({ WECHAT_MP_REPLY_MODE: 'passive' }, async (x) => {
      const fields = textMsg(MP, 'oRealPassive_0123456789abcd', '真的');
      const push = buildMpPush(MP, 'compatible', fields, { openid: 'oForgedPassive_0123456789ab' });
      const body = push.body.replace('<![CDATA[真的]]>', '<![CDATA[伪造]]>').replace('oRealPassive_', 'oForgedPassi_');
      const res = await send(x.url, { query: push.query, body });
      expect(res.status).toBe(200);
      expect(passiveText(res.body, 'compatible', 'oRealPassive_0123456789abcd')).toBe('真的');
      expect(x.api.calls).toEqual([]);
    });
  });

  it('CALLBACK_MAX_SKEW_S=0 turns the timestamp check off (stale and ancient pushes are answered)', async () => {
    const stale = await send(h.url, buildMpPush(MP, 'safe', textMsg(MP, customer(), 'x'), { timestamp: String(nowS() - 301) }));
    expect({ status: stale.status, body: stale.body }).toEqual({ status: 401, body: 'timestamp out of range' });
    await withHarness({ CALLBACK_MAX_SKEW_S: '0' }, async (x) => {
      expect(x.config.callbackMaxSkewS).toBe(0);
      for (const mode of MODES) {
        for (const ts of [nowS() - 301, nowS() + 3600, 1_000_000_000]) {
          const openid = customer(x);
          const push = buildMpPush(MP, mode, textMsg(MP, openid, `旧 ${ts}`), { timestamp: String(ts) });
          await expectAnswered(x, await send(x.urlFor(mode), push), openid, `旧 ${ts}`);
        }
      }
    });
  });
});

describe('GET: server verification', () => {
  const expectEcho = (res: Res, echostr: string) => {
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: echostr });
    expect(res.type).toMatch(/^text\/plain/);
  };
  const signed = (ts = String(nowS()), nonce = '486452656') => `signature=${mpSignature(MP.token, ts, nonce)}&timestamp=${ts}&nonce=${nonce}`;

  it('answers the echostr exactly as sent, as text/plain', async () => {
    for (const echostr of ['1616140317555161061', 'echo-Ünïcödé-回声', 'a b']) {
      expectEcho(await send(h.url, { method: 'GET', ...buildMpVerifyQuery(MP.token, echostr) }), echostr);
    }
  });

  it('keeps raw `+`, `/` and `=` in echostr; percent-encoded they decode to the same', async () => {
    const echostr = 'ab+cd/ef+gh==';
    expectEcho(await send(h.url, { method: 'GET', query: `${signed()}&echostr=${echostr}` }), echostr);
    expectEcho(await send(h.url, { method: 'GET', query: `${signed()}&echostr=${encodeURIComponent(echostr)}` }), echostr);
    expectEcho(await send(h.url, { method: 'GET', query: `echostr=${echostr}&${signed()}` }), echostr);
  });

  it('is not subject to the POST timestamp window', async () => {
    expectEcho(await send(h.url, { method: 'GET', query: `${signed(String(nowS() - 86_400))}&echostr=old` }), 'old');
    expectEcho(await send(h.url, { method: 'GET', query: `${signed('1000000000')}&echostr=ancient` }), 'ancient');
  });

  it('a bad signature is 401; a missing parameter or echostr, or one over 128 characters, is 400; none echoes', async () => {
    const ts = String(nowS());
    const wrong = `signature=${mpSignature('otherToken', ts, '1')}&timestamp=${ts}&nonce=1&echostr=secret-echo`;
    const cases: Array<[string, number, string]> = [
      [wrong, 401, 'signature mismatch'],
      [`${signed(ts, '2')}&echostr=secret-echo`.replace('nonce=2', 'nonce=3'), 401, 'signature mismatch'],
      [signed(), 400, 'missing query parameter echostr'],
      [`${signed()}&echostr=`, 400, 'missing query parameter echostr'],
      [`timestamp=${ts}&nonce=1&echostr=secret-echo`, 400, 'missing query parameter signature'],
      [`${signed()}&echostr=${'e'.repeat(129)}`, 400, 'query parameter echostr is too long'],
    ];
    for (const [query, status, body] of cases) {
      const res = await send(h.url, { method: 'GET', query });
      expect({ status: res.status, body: res.body }, query).toEqual({ status, body });
      expect(res.type).toMatch(/^text\/plain/);
    }
  });
});

describe('replay: a signed URL seen once cannot carry another message', () => {
  it('plaintext: the same (timestamp, nonce) with another body → 401; with the same body (a WeChat retry) → answered once', async () => {
    await withHarness({}, async (x) => {
      const victim = customer(x);
      const push = buildMpPush(MP, 'plaintext', textMsg(MP, victim, '原始消息'));
      await expectAnswered(x, await send(x.plainUrl, push), victim, '原始消息');
      const forged = buildMpPush(MP, 'plaintext', textMsg(MP, customer(x), '伪造消息'));
      const replay = await send(x.plainUrl, { query: push.query, body: forged.body });
      expect({ status: replay.status, body: replay.body }).toEqual({ status: 401, body: 'signature already used for another message' });
      const retry = await send(x.plainUrl, push);
      expect({ status: retry.status, body: retry.body }).toEqual({ status: 200, body: 'success' });
      await new Promise((r) => setTimeout(r, 300));
      expect(x.api.sent.map((m) => m.content)).toEqual(['原始消息']);
    });
  });

  it('an account with an EncodingAESKey refuses a plaintext push (401, hint logged): a seen URL cannot downgrade it', async () => {
    await withHarness({}, async (x) => {
      const victim = customer(x);
      const safe = buildMpPush(MP, 'safe', textMsg(MP, victim, '原始消息'));
      await expectAnswered(x, await send(x.url, safe), victim, '原始消息');
      // The attacker keeps the signed URL's signature, timestamp and nonce and drops encrypt_type/msg_signature.
      const query = safe.query.replace(/&encrypt_type=aes&msg_signature=[^&]*/, '');
      expect(query).not.toContain('encrypt_type');
      const forged = buildMpPush(MP, 'plaintext', textMsg(MP, victim, '伪造消息'));
      const res = await send(x.url, { query, body: forged.body });
      expect({ status: res.status, body: res.body }).toEqual({ status: 401, body: 'plaintext push refused' });
      // A fresh, correctly signed plaintext push is refused the same way, and the log tells the operator what to change.
      const fresh = await send(x.url, buildMpPush(MP, 'plaintext', textMsg(MP, victim, '明文')));
      expect(fresh.status).toBe(401);
      const line = x.logs.lines.find((l) => l.reason === 'plaintext_refused');
      expect(String(line?.hint)).toContain('安全模式');
      await new Promise((r) => setTimeout(r, 300));
      expect(x.api.sent.map((m) => m.content)).toEqual(['原始消息']);
    });
  });

  it('compatible: the same signatures with other plaintext siblings → 401; the identical request attaches (one answer)', async () => {
    await withHarness({}, async (x) => {
      const victim = customer(x);
      const push = buildMpPush(MP, 'compatible', textMsg(MP, victim, '兼容'));
      await expectAnswered(x, await send(x.url, push), victim, '兼容');
      const tampered = await send(x.url, { query: push.query, body: push.body.replace('<![CDATA[兼容]]>', '<![CDATA[改了]]>') });
      expect({ status: tampered.status, body: tampered.body }).toEqual({ status: 401, body: 'signature already used for another message' });
      const again = await send(x.url, push);
      expect({ status: again.status, body: again.body }).toEqual({ status: 200, body: 'success' });
      await new Promise((r) => setTimeout(r, 300));
      expect(x.api.sent.map((m) => m.content)).toEqual(['兼容']);
    });
  });
});

describe('metrics', () => {
  it('bridge_callbacks_total counts the accepted POSTs and verified GETs of channel "mp"', async () => {
    const text = (await h.deps.metrics.registry.getSingleMetricAsString('bridge_callbacks_total')) ?? '';
    const value = (outcome: string) => Number(new RegExp(`channel="mp",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    // 6 Content-Types, the size and length boundaries, 2 with `+`, the openid decoy: 11 per mode; the forgery
    expect(value('accepted')).toBe(3 * 11 + 1);
    expect(value('verified')).toBe(8);
    // `+` read as a space (3 modes), the stale push before the skew switch, 2 GETs
    expect(value('unauthorized')).toBe(6);
    expect(value('bad_request')).toBe(4);
  });
});

describe('404 when the OA channel is not configured', () => {
  const push = () => buildMpPush(MP, 'safe', textMsg(MP, 'oNobody_0123456789abcdefghij', 'hi'));

  async function expectNoMpRoutes(env: Record<string, string>): Promise<void> {
    const config = loadConfig(env);
    expect(config.mp).toBeNull();
    const logs = new LogSink();
    const deps = await createDeps(config, createLogger('debug', logs), { defaultMetrics: false });
    const app = buildApp(deps.app);
    allLogs.push(logs.raw);
    try {
      const p = push();
      const post = await app.inject({ method: 'POST', url: `${MP_PATH}?${p.query}`, payload: p.body, headers: { 'content-type': 'text/xml' } });
      expect({ status: post.statusCode, body: post.body }).toEqual({ status: 404, body: 'not found' });
      expect(post.headers['content-type']).toMatch(/^text\/plain/);
      const get = await app.inject({ method: 'GET', url: `${MP_PATH}?${buildMpVerifyQuery(MP.token, 'echo').query}` });
      expect({ status: get.statusCode, body: get.body }).toEqual({ status: 404, body: 'not found' });
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect(deps.jobs.size).toBe(0);
    } finally {
      await app.close();
      await deps.close(1000);
    }
  }

  it('with no channel variables at all', async () => {
    await expectNoMpRoutes({ LOG_LEVEL: 'silent' });
  });

  it('with only the kf channel', async () => {
    const fake = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
    try {
      const env = kfEnv(fake);
      expect(loadConfig(env).kf).not.toBeNull();
      await expectNoMpRoutes(env);
    } finally {
      await fake.close();
    }
  });
});

describe('after everything above', () => {
  it('no log line of any server holds the AppSecret, the Token or the EncodingAESKey', () => {
    const all = allLogs.flat().join('\n');
    expect(allLogs.flat().length).toBeGreaterThan(0);
    for (const s of SECRETS) expect(all).not.toContain(s);
  });
});
