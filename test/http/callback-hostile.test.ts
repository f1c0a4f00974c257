/**
 * Hostile and broken kf callbacks over a real socket: every one gets its exact status, a plain-text body, and
 * changes nothing (docs/configuration.md "Callback checks" and "Bad input changes nothing"). Each test has its own
 * server, whose store writes are recorded, so a failure points at the request that caused it.
 */
import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { computeSignature, encrypt, parseEncodingAesKey } from '../../src/crypto/wxbizmsgcrypt.js';
import type { Store } from '../../src/store/types.js';
import { buildKfCallback } from '../fakes/wecom-kf.js';
import { CREDS, OPEN_KFID, sleep, startHarness, type Harness } from '../helpers/harness.js';

const PATH = '/wecom/kf/callback';
const MAX = 65536; // the MAX_BODY_BYTES default, which this server runs with
const AES = parseEncodingAesKey(CREDS.encodingAesKey);
const SECRET_VALUES = [CREDS.kfSecret, CREDS.token, CREDS.encodingAesKey];
const STORE_WRITES = [
  'set', 'del', 'delIfEquals', 'acquireLock', 'renewLock', 'releaseLock', 'markWanted', 'clearWanted',
] as const;

let h: Harness;
let writes: string[] = [];
let sent: Array<{ method: string; status: number }> = [];
/** Logs of every server this file started, checked for secrets at the end. */
const allLogs: string[][] = [];

beforeEach(async () => {
  writes = [];
  sent = [];
  h = await startHarness({ env: { LOG_LEVEL: 'debug' } });
  allLogs.push(h.logs.raw);
  // Record every store write the server makes (the puller holds this same object).
  const store = h.deps.store as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of STORE_WRITES satisfies ReadonlyArray<keyof Store>) {
    const original = store[name]!.bind(store);
    store[name] = (...a: unknown[]) => {
      writes.push(name);
      return original(...a);
    };
  }
  // ... and every hand-off to the job queue (the routes and the puller hold this same object).
  const handOff = h.deps.jobs.handOff.bind(h.deps.jobs);
  h.deps.jobs.handOff = (jobs) => {
    writes.push('handOff');
    return handOff(jobs);
  };
});
afterEach(async () => h?.close());

interface Res {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  /** the `reason` of the "request refused" log line this request wrote, if any */
  reason: string | undefined;
}

/** A raw request (node:http, no keep-alive). `contentType: null` sends no Content-Type; `chunked` omits Content-Length. */
async function send(o: {
  query: string;
  body?: string;
  method?: 'GET' | 'POST';
  contentType?: string | null;
  chunked?: boolean;
}): Promise<Res> {
  const method = o.method ?? 'POST';
  const payload = Buffer.from(o.body ?? '', 'utf8');
  const headers: Record<string, string | number> = {};
  if (o.contentType !== null && method === 'POST') headers['content-type'] = o.contentType ?? 'text/xml';
  if (method === 'POST' && !o.chunked) headers['content-length'] = payload.length;
  const logStart = h.logs.lines.length;
  const res = await new Promise<Omit<Res, 'reason'>>((resolve, reject) => {
    const req = http.request(`${h.url}${PATH}?${o.query}`, { method, agent: false, headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: r.headers }));
      r.on('error', reject);
    });
    req.on('error', reject);
    if (o.chunked) {
      for (let i = 0; i < payload.length; i += 8192) req.write(payload.subarray(i, i + 8192));
      req.end();
    } else req.end(method === 'POST' ? payload : undefined);
  });
  sent.push({ method, status: res.status });
  const refusal = h.logs.lines.slice(logStart).find((l) => l.msg === 'request refused');
  return { ...res, reason: refusal?.reason as string | undefined };
}

/** The refusal has this status (and log reason, when given), a short plain-text body, and changed nothing. */
async function expectRefused(res: Res, status: number, reason?: string): Promise<void> {
  expect({ status: res.status, body: res.body }).toMatchObject({ status });
  if (reason !== undefined) expect(res.reason).toBe(reason);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  expect(res.body.length).toBeGreaterThan(0);
  expect(res.body.length).toBeLessThan(200);
  expect(res.body).not.toMatch(/^\s*at /m);
  expect(res.body).not.toMatch(/Error:|\.ts:\d|node_modules/);
  for (const s of SECRET_VALUES) expect(res.body).not.toContain(s);
  await expectNothingProcessed();
}

async function expectNothingProcessed(): Promise<void> {
  await sleep(30); // a hand-off would start its pull at once; give it the chance to show
  expect(writes).toEqual([]);
  expect(await h.deps.store.listWanted('kf:pulls-wanted')).toEqual([]);
  expect(h.fake.calls.filter((c) => c.api === 'sync_msg')).toEqual([]);
  expect(h.fake.calls).toEqual([]);
}

const nowS = () => Math.floor(Date.now() / 1000);
const cdata = (v: string) => `<![CDATA[${v}]]>`;
const envelope = (enc: string) =>
  `<xml><ToUserName>${cdata(CREDS.corpId)}</ToUserName><Encrypt>${cdata(enc)}</Encrypt><AgentID>${cdata('')}</AgentID></xml>`;
const kfNotice = (ts = nowS()) =>
  `<xml><ToUserName>${cdata(CREDS.corpId)}</ToUserName><CreateTime>${ts}</CreateTime><MsgType>${cdata('event')}</MsgType>` +
  `<Event>${cdata('kf_msg_or_event')}</Event><Token>${cdata('ENCSyncToken')}</Token><OpenKfId>${cdata(OPEN_KFID)}</OpenKfId></xml>`;

/** A query signed over `enc` with our Token (or another), as WeCom builds it. */
function signedQuery(enc: string, o: { timestamp?: string; nonce?: string; token?: string } = {}): string {
  const ts = o.timestamp ?? String(nowS());
  const nonce = o.nonce ?? '1372623149';
  const sig = computeSignature(o.token ?? CREDS.token, ts, nonce, enc);
  return `msg_signature=${sig}&timestamp=${encodeURIComponent(ts)}&nonce=${encodeURIComponent(nonce)}`;
}

/** A complete, correctly signed callback whose envelope carries `enc`. */
const signed = (enc: string, o: Parameters<typeof signedQuery>[1] = {}) => ({ query: signedQuery(enc, o), body: envelope(enc) });
const valid = () => buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: 'ENCSyncToken' });
const badSig = (query: string) => query.replace(/msg_signature=([0-9a-f]{39})([0-9a-f])/, (_m, a: string, b: string) =>
  `msg_signature=${a}${b === '0' ? '1' : '0'}`);
const dropParam = (query: string, name: string) => query.split('&').filter((p) => !p.startsWith(`${name}=`)).join('&');
const padTo = (body: string, bytes: number) => body.replace('</xml>', `${' '.repeat(bytes - Buffer.byteLength(body))}</xml>`);

describe('control', () => {
  it('the same valid callback is accepted and recorded, so the "nothing processed" checks below can fail', async () => {
    const res = await send(valid());
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: 'success' });
    expect(writes).toContain('markWanted');
    await h.fake.waitFor(() => h.fake.calls.some((c) => c.api === 'sync_msg'));
  });
});

describe('DTDs and entities are refused before anything else is read (400)', () => {
  it('XXE: an external entity on an otherwise valid, correctly signed callback', async () => {
    const cb = valid();
    const body =
      `<?xml version="1.0"?>\n<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n` +
      cb.body.replace('</xml>', '<Extra>&x;</Extra></xml>');
    const res = await send({ query: cb.query, body });
    await expectRefused(res, 400, 'doctype');
    expect(res.body).not.toContain('root:');
  });

  it('billion laughs: nested internal entities', async () => {
    const cb = valid();
    let dtd = '<!ENTITY lol "lol">';
    for (let i = 1; i <= 9; i++) {
      const prev = i === 1 ? 'lol' : `lol${i - 1}`;
      dtd += `<!ENTITY lol${i} "${`&${prev};`.repeat(10)}">`;
    }
    const body = `<?xml version="1.0"?><!DOCTYPE xml [${dtd}]>` + cb.body.replace('</xml>', '<Extra>&lol9;</Extra></xml>');
    await expectRefused(await send({ query: cb.query, body }), 400, 'doctype');
  });

  it('a bare <!DOCTYPE xml>, in any case and spacing', async () => {
    for (const decl of ['<!DOCTYPE xml>', '<!doctype xml>', '<! DOCTYPE xml>', '<!DocType xml SYSTEM "http://127.0.0.1/x.dtd">']) {
      const cb = valid();
      await expectRefused(await send({ query: cb.query, body: `${decl}\n${cb.body}` }), 400, 'doctype');
    }
  });

  it('<!ENTITY alone, without a DOCTYPE', async () => {
    const cb = valid();
    await expectRefused(await send({ query: cb.query, body: `<!ENTITY x "y">${cb.body}` }), 400, 'doctype');
    const inside = cb.body.replace('<xml>', '<xml><!ENTITY x SYSTEM "file:///etc/passwd">');
    await expectRefused(await send({ query: cb.query, body: inside }), 400, 'doctype');
  });
});

describe('the body (413 / 400)', () => {
  it('MAX_BODY_BYTES + 1 bytes is 413, with or without Content-Length', async () => {
    const cb = valid();
    const body = padTo(cb.body, MAX + 1);
    expect(Buffer.byteLength(body)).toBe(MAX + 1);
    await expectRefused(await send({ query: cb.query, body }), 413);
    await expectRefused(await send({ query: cb.query, body, chunked: true }), 413);
  });

  it('malformed XML, XML without Encrypt, an empty Encrypt, an empty body, plain text', async () => {
    const cb = valid();
    const cases: Array<[string, string]> = [
      [cb.body.slice(0, -3), 'malformed'],
      ['<xml><Encrypt>abc</xml>', 'malformed'],
      ['<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt>', 'malformed'],
      [`<xml><ToUserName>${cdata(CREDS.corpId)}</ToUserName><AgentID>1</AgentID></xml>`, 'no_encrypt'],
      [`<xml><Encrypt>${cdata('')}</Encrypt></xml>`, 'no_encrypt'],
      ['', 'no_encrypt'],
      ['hello', 'malformed'],
    ];
    for (const [body] of cases) {
      const res = await send({ query: cb.query, body });
      await expectRefused(res, 400);
      expect(['malformed', 'no_encrypt', 'not_an_object'], JSON.stringify(body)).toContain(res.reason);
    }
  });
});

describe('the query (400)', () => {
  it('each required parameter missing or empty', async () => {
    for (const name of ['msg_signature', 'timestamp', 'nonce']) {
      const cb = valid();
      const missing = await send({ query: dropParam(cb.query, name), body: cb.body });
      await expectRefused(missing, 400, 'missing_param');
      expect(missing.body).toContain(name);
      const empty = await send({ query: `${dropParam(cb.query, name)}&${name}=`, body: cb.body });
      await expectRefused(empty, 400, 'missing_param');
    }
    await expectRefused(await send({ query: '', body: valid().body }), 400, 'missing_param');
  });

  it('a parameter of 129 characters, even correctly signed', async () => {
    const enc = encrypt(AES, kfNotice(), CREDS.corpId);
    const res = await send(signed(enc, { nonce: '7'.repeat(129) }));
    await expectRefused(res, 400, 'long_param');
    expect(res.body).toContain('nonce');
    const cb = valid();
    const longSig = cb.query.replace(/^msg_signature=[0-9a-f]+/, `msg_signature=${'a'.repeat(129)}`);
    await expectRefused(await send({ query: longSig, body: cb.body }), 400, 'long_param');
  });
});

describe('signature, time, AES, receiveid, inner XML', () => {
  it('a wrong signature is 401 (one digit off, upper case, another Token)', async () => {
    const cb = valid();
    await expectRefused(await send({ query: badSig(cb.query), body: cb.body }), 401, 'bad_signature');
    const upper = cb.query.replace(/msg_signature=([0-9a-f]+)/, (_m, s: string) => `msg_signature=${s.toUpperCase()}`);
    await expectRefused(await send({ query: upper, body: cb.body }), 401, 'bad_signature');
    const enc = encrypt(AES, kfNotice(), CREDS.corpId);
    await expectRefused(await send(signed(enc, { token: 'otherToken' })), 401, 'bad_signature');
  });

  it('a stale or future timestamp is 401 even when correctly signed', async () => {
    // now − 301 can only grow older before the server reads it; a future one gets a margin for the same reason
    for (const ts of [nowS() - 301, nowS() + 305]) {
      const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: 'x', timestamp: ts });
      await expectRefused(await send(cb), 401, 'stale_timestamp');
    }
    const enc = encrypt(AES, kfNotice(), CREDS.corpId);
    await expectRefused(await send(signed(enc, { timestamp: 'abc' })), 401, 'stale_timestamp');
  });

  it('an AES, padding or length failure under a valid signature is 400', async () => {
    const otherKey = parseEncodingAesKey('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG');
    const underOtherKey = encrypt(otherKey, kfNotice(), CREDS.corpId, Buffer.alloc(16, 7));
    for (const enc of [
      'AAAA', // 3 bytes
      Buffer.alloc(17, 1).toString('base64'), // not a multiple of 16
      'not base64 at all!',
      'QUJD-_==', // url-safe alphabet
      underOtherKey, // decrypts to garbage: padding/length check fails
    ]) {
      await expectRefused(await send(signed(enc)), 400, 'decrypt_failed');
    }
  });

  it('a message encrypted for another corp id is 401', async () => {
    const enc = encrypt(AES, kfNotice(), 'wwOtherCorp000000');
    await expectRefused(await send(signed(enc)), 401, 'bad_receiveid');
    await expectRefused(await send(signed(encrypt(AES, kfNotice(), ''))), 401, 'bad_receiveid');
  });

  it('a decrypted payload that is not XML (or carries a DOCTYPE) is 400', async () => {
    for (const inner of ['this is not xml', '{"MsgType":"event"}', `<!DOCTYPE xml>${kfNotice()}`, '<xml>']) {
      await expectRefused(await send(signed(encrypt(AES, inner, CREDS.corpId))), 400, 'bad_inner_xml');
    }
  });
});

describe('check order: the first failing check decides', () => {
  it('oversize beats a bad signature and missing parameters (413)', async () => {
    const cb = valid();
    const body = padTo(cb.body, MAX + 1);
    await expectRefused(await send({ query: badSig(cb.query), body }), 413);
    await expectRefused(await send({ query: '', body }), 413);
  });

  it('a missing or long parameter beats a bad body (400 for the parameter)', async () => {
    const cb = valid();
    const missing = await send({ query: dropParam(cb.query, 'nonce'), body: '<!DOCTYPE xml><xml><Encrypt>x</xml>' });
    await expectRefused(missing, 400, 'missing_param');
    expect(missing.body).toContain('nonce');
    const long = await send({ query: dropParam(cb.query, 'nonce') + `&nonce=${'1'.repeat(129)}`, body: '<xml>' });
    await expectRefused(long, 400, 'long_param');
  });

  it('a bad body beats a bad signature (400, not 401)', async () => {
    const cb = valid();
    await expectRefused(await send({ query: badSig(cb.query), body: `<!DOCTYPE xml>${cb.body}` }), 400, 'doctype');
    await expectRefused(await send({ query: badSig(cb.query), body: '<xml><AgentID>1</AgentID></xml>' }), 400, 'no_encrypt');
    await expectRefused(await send({ query: badSig(cb.query), body: '<xml><Encrypt>' }), 400, 'malformed');
  });

  it('a bad signature beats a stale timestamp; a stale timestamp beats an AES failure', async () => {
    const stale = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: 'x', timestamp: nowS() - 3600 });
    await expectRefused(await send({ query: badSig(stale.query), body: stale.body }), 401, 'bad_signature');
    await expectRefused(await send(signed('AAAA', { timestamp: String(nowS() - 3600) })), 401, 'stale_timestamp');
  });

  it('a bad signature beats an AES failure; a receiveid mismatch beats unparseable inner XML', async () => {
    const garbage = signed('AAAA');
    await expectRefused(await send({ query: badSig(garbage.query), body: garbage.body }), 401, 'bad_signature');
    await expectRefused(await send(signed(encrypt(AES, 'not xml', 'wwOtherCorp000000'))), 401, 'bad_receiveid');
  });
});

describe('GET verification refusals', () => {
  const echoQuery = (echostr: string, o: { token?: string } = {}) => {
    const ts = String(nowS());
    const sig = computeSignature(o.token ?? CREDS.token, ts, '42', echostr);
    return `msg_signature=${sig}&timestamp=${ts}&nonce=42&echostr=${encodeURIComponent(echostr)}`;
  };

  it('a wrong signature is 401, a missing echostr 400, an undecryptable one 400', async () => {
    const echostr = encrypt(AES, '1616140317555161061', CREDS.corpId);
    await expectRefused(await send({ method: 'GET', query: echoQuery(echostr, { token: 'nope' }) }), 401, 'bad_signature');
    await expectRefused(await send({ method: 'GET', query: badSig(echoQuery(echostr)) }), 401, 'bad_signature');
    await expectRefused(await send({ method: 'GET', query: dropParam(echoQuery(echostr), 'echostr') }), 400, 'missing_param');
    await expectRefused(await send({ method: 'GET', query: echoQuery('AAAA') }), 400, 'decrypt_failed');
    const foreign = encrypt(AES, '1616140317555161061', 'wwOtherCorp000000');
    await expectRefused(await send({ method: 'GET', query: echoQuery(foreign) }), 401, 'bad_receiveid');
  });
});

describe('metrics and logs', () => {
  it('/metrics counts each refusal by outcome and times the POSTs', async () => {
    const cb = valid();
    await expectRefused(await send({ query: badSig(cb.query), body: cb.body }), 401);
    await expectRefused(await send({ query: badSig(cb.query), body: cb.body }), 401);
    await expectRefused(await send({ query: cb.query, body: '<xml>' }), 400);
    await expectRefused(await send({ query: cb.query, body: padTo(cb.body, MAX + 1) }), 413);
    await expectRefused(await send({ method: 'GET', query: `${badSig(cb.query)}&echostr=AAAA` }), 401);
    const res = await fetch(`${h.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const value = (name: string, labels: string[]) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const kf = 'channel="kf"';
    expect(value('bridge_callbacks_total', [kf, 'outcome="unauthorized"'])).toBe(3);
    expect(value('bridge_callbacks_total', [kf, 'outcome="bad_request"'])).toBe(1);
    expect(value('bridge_callbacks_total', [kf, 'outcome="too_large"'])).toBe(1);
    expect(value('bridge_callbacks_total', [kf, 'outcome="accepted"'])).toBe(0);
    expect(text).toMatch(/^bridge_ack_duration_seconds_bucket\{/m);
    expect(value('bridge_ack_duration_seconds_count', [kf])).toBe(sent.filter((s) => s.method === 'POST').length);
  });

  it('no server in this file logged the kf secret, the Token or the EncodingAESKey', () => {
    const lines = allLogs.flat();
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('\n');
    for (const s of SECRET_VALUES) expect(all).not.toContain(s);
  });
});
