/**
 * Hostile and broken Official Account pushes (POST /wechat/mp/callback) over a real socket, in plaintext,
 * compatible and safe mode: each gets its exact status and plain-text body in docs/configuration.md's check order, and
 * changes nothing ("Bad input changes nothing": no store write, no job, no API call); only
 * bridge_callbacks_total{channel="mp"} counts it. Each test has its own server (MAX_BODY_BYTES=2048).
 */
import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.js';
import { buildMpPush, eventMsg, mpXml, textMsg, type MpFields, type MpMode } from '../fakes/wechat-mp-push.js';
import { mpMsgSignature, mpSignature, refEncrypt } from '../fakes/wechat-mp-reference-crypto.js';
import { sleep } from '../helpers/harness.js';
import { MODES, MP, MP_PATH, MP_SECRET, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';

const MAX = 2048;
const SECRETS = [MP.token, MP.encodingAesKey, MP_SECRET];
const ENCRYPTED = ['compatible', 'safe'] as const;
type Sealed = (typeof ENCRYPTED)[number];
const OTHER_KEY = 'ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut';
const USER = 'oHostileUser_0123456789abcd';
const STORE_WRITES = [
  'set', 'del', 'delIfEquals', 'setIfAbsent', 'incr', 'acquireLock', 'renewLock', 'releaseLock', 'markWanted',
  'clearWanted',
] as const;
const OUTCOME: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 413: 'too_large' };

let h: MpHarness;
let writes: string[] = [];
/** refusals this test made, by outcome: bridge_callbacks_total must say the same */
let tally: Record<string, number> = {};
const allLogs: string[][] = [];

async function start(env: Record<string, string> = {}): Promise<MpHarness> {
  writes = [];
  tally = {};
  const x = await startMpHarness({ env: { MAX_BODY_BYTES: String(MAX), ...env } });
  allLogs.push(x.logs.raw);
  const store = x.deps.store as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of STORE_WRITES satisfies ReadonlyArray<keyof Store>) {
    const original = store[name]!.bind(store);
    store[name] = (...a: unknown[]) => {
      writes.push(name);
      return original(...a);
    };
  }
  // ... and every hand-off to the job queue (the routes and the puller hold this same object).
  const handOff = x.deps.jobs.handOff.bind(x.deps.jobs);
  x.deps.jobs.handOff = (jobs) => {
    writes.push('handOff');
    return handOff(jobs);
  };
  return x;
}
beforeEach(async () => {
  h = await start();
});
afterEach(async () => h?.close());

interface Res {
  status: number;
  body: string;
  type: string | undefined;
  /** the `reason` of the "request refused" log line, if any */
  reason: string | undefined;
}

/** A raw request (node:http, no keep-alive). `contentType: null` sends none; `chunked` omits Content-Length. */
async function send(o: { query: string; body?: string; method?: 'GET' | 'POST'; contentType?: string | null; chunked?: boolean }): Promise<Res> {
  const method = o.method ?? 'POST';
  const payload = Buffer.from(o.body ?? '', 'utf8');
  const headers: Record<string, string | number> = {};
  if (method === 'POST' && o.contentType !== null) headers['content-type'] = o.contentType ?? 'text/xml';
  if (method === 'POST' && !o.chunked) headers['content-length'] = payload.length;
  const logStart = h.logs.lines.length;
  const res = await new Promise<Omit<Res, 'reason'>>((resolve, reject) => {
    // Plaintext pushes go to the harness's keyless server: an account with an EncodingAESKey refuses them (a downgrade).
    const base = /(^|&)encrypt_type=/.test(o.query) ? h.url : h.plainUrl;
    const req = http.request(`${base}${MP_PATH}?${o.query}`, { method, agent: false, headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), type: r.headers['content-type'] }));
      r.on('error', reject);
    });
    req.on('error', reject);
    if (o.chunked) {
      for (let i = 0; i < payload.length; i += 512) req.write(payload.subarray(i, i + 512));
      req.end();
    } else req.end(method === 'POST' ? payload : undefined);
  });
  const refusal = h.logs.lines.slice(logStart).find((l) => l.msg === 'request refused');
  return { ...res, reason: refusal?.reason as string | undefined };
}

/** bridge_callbacks_total{channel="mp",outcome} */
async function count(outcome: string): Promise<number> {
  const text = (await h.deps.metrics.registry.getSingleMetricAsString('bridge_callbacks_total')) ?? '';
  const m = new RegExp(`^bridge_callbacks_total\\{channel="mp",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * The refusal has this status, log reason (null: not checked) and body (exact string, or a pattern), is plain
 * text without stack or secret, is counted, and changed nothing.
 */
async function refused(res: Res, status: number, reason: string | null, body: string | RegExp): Promise<void> {
  expect({ status: res.status, ...(reason === null ? {} : { reason: res.reason }) }).toEqual({ status, ...(reason === null ? {} : { reason }) });
  if (typeof body === 'string') expect(res.body).toBe(body);
  else expect(res.body).toMatch(body);
  expect(res.type).toMatch(/^text\/plain/);
  expect(res.body).not.toMatch(/^\s*at |Error:|\.ts:\d|node_modules/m);
  for (const s of SECRETS) expect(res.body).not.toContain(s);
  tally[OUTCOME[status]!] = (tally[OUTCOME[status]!] ?? 0) + 1;
  await nothingProcessed();
}

async function nothingProcessed(): Promise<void> {
  await sleep(30); // a hand-off would start its job (and its API calls) at once
  expect(writes).toEqual([]);
  expect(h.api.calls).toEqual([]);
  expect(h.deps.jobs.size).toBe(0);
  for (const [outcome, n] of Object.entries(tally)) expect(await count(outcome), outcome).toBe(n);
  expect(await count('accepted')).toBe(0);
  expect(await count('event')).toBe(0);
}

/** After the refusals, the same server still takes a valid push in `mode` and answers it. */
async function stillAnswers(mode: MpMode): Promise<void> {
  h.api.userInteracted(USER);
  const res = await send(buildMpPush(MP, mode, textMsg(MP, USER, `still ${mode}`)));
  expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: 'success' });
  await h.api.waitFor(() => h.api.sent.some((s) => s.touser === USER && s.content === `still ${mode}`));
}

const nowS = () => Math.floor(Date.now() / 1000);
const msg = (): MpFields => textMsg(MP, USER, '你好');
const valid = (mode: MpMode, o: { timestamp?: string; nonce?: string; openid?: string } = {}) => buildMpPush(MP, mode, msg(), o);

/** An encrypted push whose Encrypt is `enc` (default: `inner` encrypted for `appId`), signed as told. */
function sealed(mode: Sealed, o: { inner?: string; enc?: string; appId?: string; key?: string; timestamp?: string; msgToken?: string } = {}) {
  const ts = o.timestamp ?? String(nowS());
  const nonce = '1234567890';
  const enc = o.enc ?? refEncrypt(o.key ?? MP.encodingAesKey, o.inner ?? mpXml(msg()), o.appId ?? MP.appId);
  const query =
    `signature=${mpSignature(MP.token, ts, nonce)}&timestamp=${encodeURIComponent(ts)}&nonce=${nonce}&openid=${USER}` +
    `&encrypt_type=aes&msg_signature=${mpMsgSignature(o.msgToken ?? MP.token, ts, nonce, enc)}`;
  return { query, body: mpXml(mode === 'safe' ? { ToUserName: MP.ghId, Encrypt: enc } : { ...msg(), Encrypt: enc }) };
}
/** A correctly signed plaintext push of `xml`. */
function plain(xml: string, timestamp = String(nowS())) {
  return { query: `signature=${mpSignature(MP.token, timestamp, '42')}&timestamp=${timestamp}&nonce=42&openid=${USER}`, body: xml };
}

const drop = (q: string, name: string) => q.split('&').filter((p) => !p.startsWith(`${name}=`)).join('&');
const put = (q: string, name: string, v: string) => `${drop(q, name)}&${name}=${v}`;
/** The last hex digit of `signature` or `msg_signature` changed. */
const flip = (q: string, name: 'signature' | 'msg_signature') =>
  q.replace(new RegExp(`(^|&)${name}=([0-9a-f]{39})([0-9a-f])`), (_m, p: string, a: string, b: string) => `${p}${name}=${a}${b === '0' ? '1' : '0'}`);
const pad = (body: string, bytes: number) => body.replace(/<\/xml>$/, `${' '.repeat(bytes - Buffer.byteLength(body))}</xml>`);
const required = (mode: MpMode) => ['signature', 'timestamp', 'nonce', ...(mode === 'plaintext' ? [] : ['msg_signature'])];
const DOCTYPE_BODY = 'DOCTYPE and ENTITY declarations are refused';
const BAD_SIG = 'signature mismatch';
const STALE = 'timestamp out of range';

describe('control', () => {
  for (const mode of MODES) {
    it(`${mode}: the valid push these tests break is accepted, stored, counted and answered`, async () => {
      await stillAnswers(mode);
      expect(writes).toContain('handOff');
      expect(await count('accepted')).toBe(1);
    });
  }
});

describe('413: a body over MAX_BODY_BYTES, before any other check', () => {
  for (const mode of MODES) {
    it(`${mode}: MAX+1 bytes, with or without Content-Length, even with a bad signature or no query`, async () => {
      const p = valid(mode);
      const big = pad(p.body, MAX + 1);
      expect(Buffer.byteLength(big)).toBe(MAX + 1);
      await refused(await send({ query: p.query, body: big }), 413, null, 'payload too large');
      await refused(await send({ query: p.query, body: big, chunked: true }), 413, null, 'payload too large');
      await refused(await send({ query: flip(p.query, 'signature'), body: big }), 413, null, 'payload too large');
      await refused(await send({ query: '', body: `<!DOCTYPE x>${big}` }), 413, null, 'payload too large');
    });
  }
});

describe('400: the query', () => {
  for (const mode of MODES) {
    it(`${mode}: each required parameter missing or empty${mode === 'plaintext' ? '' : ' (encrypt_type=aes without msg_signature)'}`, async () => {
      for (const name of required(mode)) {
        const p = valid(mode);
        const text = `missing query parameter ${name}`;
        await refused(await send({ query: drop(p.query, name), body: p.body }), 400, 'missing_param', text);
        await refused(await send({ query: put(p.query, name, ''), body: p.body }), 400, 'missing_param', text);
      }
      await refused(await send({ query: '', body: valid(mode).body }), 400, 'missing_param', 'missing query parameter signature');
    });

    it(`${mode}: a parameter over 128 characters (even correctly signed), an over-long openid or encrypt_type`, async () => {
      const long = (name: string) => `query parameter ${name} is too long`;
      await refused(await send(valid(mode, { nonce: '7'.repeat(129) })), 400, 'long_param', long('nonce'));
      await refused(await send(valid(mode, { timestamp: '1'.repeat(129) })), 400, 'long_param', long('timestamp'));
      const p = valid(mode);
      for (const name of required(mode)) {
        await refused(await send({ query: put(p.query, name, 'a'.repeat(129)), body: p.body }), 400, 'long_param', long(name));
      }
      await refused(await send(valid(mode, { openid: 'o'.repeat(129) })), 400, 'long_param', long('openid'));
      await refused(await send({ query: put(p.query, 'encrypt_type', 'x'.repeat(129)), body: p.body }), 400, 'long_param', long('encrypt_type'));
      await stillAnswers(mode);
    });
  }
});

describe('400: the body', () => {
  for (const mode of MODES) {
    it(`${mode}: not well-formed XML, an empty body, a root without children`, async () => {
      const p = valid(mode);
      for (const body of [p.body.slice(0, -3), '<xml><Content>x</xml>', 'hello', '<xml><a>1</a></xml><xml/>', '']) {
        const res = await send({ query: p.query, body });
        await refused(res, 400, null, /^malformed XML: /);
        expect(res.reason, JSON.stringify(body)).toBe('malformed');
      }
      await refused(await send({ query: p.query, body: '<xml></xml>' }), 400, 'not_an_object', 'XML root must hold child elements');
    });

    it(`${mode}: XXE, billion laughs, a bare DOCTYPE, an ENTITY without DOCTYPE, on a correctly signed push`, async () => {
      const p = valid(mode);
      const xxe = `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>${p.body.replace('</xml>', '<E>&x;</E></xml>')}`;
      let dtd = '<!ENTITY lol "lol">';
      for (let i = 1; i <= 9; i++) dtd += `<!ENTITY lol${i} "${`&${i === 1 ? 'lol' : `lol${i - 1}`};`.repeat(10)}">`;
      const laughs = `<?xml version="1.0"?><!DOCTYPE xml [${dtd}]>${p.body.replace('</xml>', '<E>&lol9;</E></xml>')}`;
      for (const body of [xxe, laughs, `<!doctype xml>${p.body}`, `<! DOCTYPE xml>${p.body}`, p.body.replace('<xml>', '<xml><!ENTITY x "y">')]) {
        const res = await send({ query: p.query, body });
        await refused(res, 400, 'doctype', DOCTYPE_BODY);
        expect(res.body).not.toContain('root:');
      }
    });
  }

  for (const mode of ENCRYPTED) {
    it(`${mode}: encrypt_type=aes and no Encrypt, or an empty one`, async () => {
      const p = sealed(mode);
      const noEncrypt = mode === 'safe' ? mpXml({ ToUserName: MP.ghId }) : mpXml(msg());
      await refused(await send({ query: p.query, body: noEncrypt }), 400, 'no_encrypt', 'body has no Encrypt');
      await refused(await send({ query: p.query, body: mpXml({ ToUserName: MP.ghId, Encrypt: '' }) }), 400, 'no_encrypt', 'body has no Encrypt');
    });
  }
});

describe('401: signatures and time', () => {
  for (const mode of MODES) {
    it(`${mode}: a wrong signature (one digit off, upper case, another Token)`, async () => {
      const p = valid(mode);
      await refused(await send({ query: flip(p.query, 'signature'), body: p.body }), 401, 'bad_signature', BAD_SIG);
      const upper = p.query.replace(/(^|&)signature=([0-9a-f]+)/, (_m, a: string, s: string) => `${a}signature=${s.toUpperCase()}`);
      await refused(await send({ query: upper, body: p.body }), 401, 'bad_signature', BAD_SIG);
      const other = buildMpPush({ ...MP, token: 'anotherToken' }, mode, msg());
      await refused(await send(other), 401, 'bad_signature', BAD_SIG);
    });

    it(`${mode}: a stale, future or non-numeric timestamp, correctly signed`, async () => {
      for (const ts of [nowS() - 301, nowS() + 305, 'abc']) {
        await refused(await send(valid(mode, { timestamp: String(ts) })), 401, 'stale_timestamp', STALE);
      }
    });
  }

  for (const mode of ENCRYPTED) {
    it(`${mode}: right signature, wrong msg_signature (digit off, another Token, over another Encrypt)`, async () => {
      const p = valid(mode);
      await refused(await send({ query: flip(p.query, 'msg_signature'), body: p.body }), 401, 'bad_signature', BAD_SIG);
      await refused(await send(sealed(mode, { msgToken: 'anotherToken' })), 401, 'bad_signature', BAD_SIG);
      const swapped = sealed(mode);
      await refused(await send({ query: swapped.query, body: sealed(mode).body }), 401, 'bad_signature', BAD_SIG);
    });
  }

  it('an unsigned event (subscribe, unsubscribe) writes and sends nothing', async () => {
    for (const event of ['subscribe', 'unsubscribe']) {
      const p = buildMpPush(MP, 'plaintext', eventMsg(MP, USER, event));
      await refused(await send({ query: flip(p.query, 'signature'), body: p.body }), 401, 'bad_signature', BAD_SIG);
    }
  });
});

describe('after the signatures: AES (400), AppID (401), the decrypted message (400)', () => {
  for (const mode of ENCRYPTED) {
    it(`${mode}: an undecryptable Encrypt under a valid msg_signature`, async () => {
      const underOtherKey = refEncrypt(OTHER_KEY, mpXml(msg()), MP.appId);
      for (const enc of ['AAAA', Buffer.alloc(17, 1).toString('base64'), 'not base64 at all!', 'QUJD-_==', underOtherKey]) {
        await refused(await send(sealed(mode, { enc })), 400, 'decrypt_failed', /^cannot decrypt \(-?\w+\)$/);
      }
    });

    it(`${mode}: a message encrypted for another AppID (or none)`, async () => {
      for (const appId of ['wx0000000000000000', '']) {
        await refused(await send(sealed(mode, { appId })), 401, 'bad_receiveid', 'receiveid mismatch');
      }
    });

    it(`${mode}: decrypted text that is not XML, or has a DOCTYPE`, async () => {
      for (const inner of ['this is not xml', '{"MsgType":"text"}', `<!DOCTYPE xml>${mpXml(msg())}`, '<xml>']) {
        await refused(await send(sealed(mode, { inner })), 400, 'bad_inner_xml', 'decrypted message is not valid XML');
      }
    });
  }

  for (const mode of MODES) {
    it(`${mode}: a message without a valid FromUserName or MsgId`, async () => {
      const { FromUserName: _f, ...noFrom } = msg();
      const { MsgId: _m, ...noMsgId } = msg();
      const cases: Array<[MpFields, string]> = [
        [noFrom, 'FromUserName'],
        [{ ...msg(), FromUserName: 'o:../../x' }, 'FromUserName'],
        [noMsgId, 'MsgId'],
        [{ ...msg(), MsgId: '12ab' }, 'MsgId'],
      ];
      for (const [fields, name] of cases) {
        const p = mode === 'plaintext' ? plain(mpXml(fields)) : sealed(mode, { inner: mpXml(fields) });
        await refused(await send(p), 400, 'bad_message', `message has no valid ${name}`);
      }
    });
  }
});

describe('check order: the first failing check decides', () => {
  for (const mode of MODES) {
    it(`${mode}: a missing or long parameter beats a bad body; a bad body beats a bad signature`, async () => {
      const p = valid(mode);
      const doctype = `<!DOCTYPE xml>${p.body}`;
      await refused(await send({ query: drop(p.query, 'nonce'), body: doctype }), 400, 'missing_param', 'missing query parameter nonce');
      await refused(await send({ query: put(p.query, 'openid', 'o'.repeat(129)), body: '<xml>' }), 400, 'long_param', 'query parameter openid is too long');
      await refused(await send({ query: flip(p.query, 'signature'), body: doctype }), 400, 'doctype', DOCTYPE_BODY);
      await refused(await send({ query: flip(p.query, 'signature'), body: '<xml><a>' }), 400, 'malformed', /^malformed XML: /);
      if (mode !== 'plaintext') {
        const q = flip(flip(p.query, 'signature'), 'msg_signature');
        await refused(await send({ query: q, body: mpXml({ ToUserName: MP.ghId }) }), 400, 'no_encrypt', 'body has no Encrypt');
      }
    });

    it(`${mode}: a bad signature beats a stale timestamp and a bad message; a stale timestamp beats a bad message`, async () => {
      const stale = String(nowS() - 3600);
      const p = valid(mode, { timestamp: stale });
      await refused(await send({ query: flip(p.query, 'signature'), body: p.body }), 401, 'bad_signature', BAD_SIG);
      const { MsgId: _m, ...noMsgId } = msg();
      const bad = mode === 'plaintext' ? plain(mpXml(noMsgId)) : sealed(mode, { inner: mpXml(noMsgId) });
      await refused(await send({ query: flip(bad.query, 'signature'), body: bad.body }), 401, 'bad_signature', BAD_SIG);
      const badStale = mode === 'plaintext' ? plain(mpXml(noMsgId), stale) : sealed(mode, { inner: mpXml(noMsgId), timestamp: stale });
      await refused(await send(badStale), 401, 'stale_timestamp', STALE);
      await stillAnswers(mode);
    });
  }

  for (const mode of ENCRYPTED) {
    it(`${mode}: a bad msg_signature beats a stale timestamp and an AES failure; stale beats AES; AppID beats inner XML`, async () => {
      const stale = sealed(mode, { timestamp: String(nowS() - 3600) });
      await refused(await send({ query: flip(stale.query, 'msg_signature'), body: stale.body }), 401, 'bad_signature', BAD_SIG);
      const garbage = sealed(mode, { enc: 'AAAA' });
      await refused(await send({ query: flip(garbage.query, 'msg_signature'), body: garbage.body }), 401, 'bad_signature', BAD_SIG);
      await refused(await send(sealed(mode, { enc: 'AAAA', timestamp: String(nowS() - 3600) })), 401, 'stale_timestamp', STALE);
      await refused(await send(sealed(mode, { inner: 'not xml', appId: 'wx0000000000000000' })), 401, 'bad_receiveid', 'receiveid mismatch');
    });
  }
});

describe('encrypt_type=aes while no WECHAT_MP_ENCODING_AES_KEY is configured', () => {
  beforeEach(async () => {
    await h.close();
    h = await start({ WECHAT_MP_ENCODING_AES_KEY: '' });
    expect(h.config.mp?.encodingAesKey).toBeNull();
  });

  it('compatible and safe pushes are 400 and change nothing; plaintext pushes are still answered', async () => {
    for (const mode of ENCRYPTED) {
      await refused(await send(valid(mode)), 400, 'no_aes_key', 'encrypted push but no EncodingAESKey is configured');
    }
    await stillAnswers('plaintext');
  });

  it('a bad signature is still 401 first', async () => {
    for (const mode of ENCRYPTED) {
      const p = valid(mode);
      await refused(await send({ query: flip(p.query, 'signature'), body: p.body }), 401, 'bad_signature', BAD_SIG);
    }
  });

  // docs/configuration.md: signature mismatch (both signatures in compatible/safe mode) → 401 and a stale timestamp → 401
  // come before any AES failure → 400; verify.ts's own comment says the key is "checked after the signatures".
  it('a bad msg_signature is still 401 before the missing key (400)', async () => {
    for (const mode of ENCRYPTED) {
      const p = valid(mode);
      await refused(await send({ query: flip(p.query, 'msg_signature'), body: p.body }), 401, 'bad_signature', BAD_SIG);
    }
  });

  it('a stale timestamp is still 401 before the missing key (400)', async () => {
    for (const mode of ENCRYPTED) {
      await refused(await send(valid(mode, { timestamp: String(nowS() - 3600) })), 401, 'stale_timestamp', STALE);
    }
  });
});

describe('logs', () => {
  it('no server in this file logged the AppSecret, the Token or the EncodingAESKey', () => {
    const all = allLogs.flat().join('\n');
    expect(allLogs.flat().length).toBeGreaterThan(0);
    for (const s of SECRETS) expect(all).not.toContain(s);
  });
});
