/**
 * docs/configuration.md "Bad input changes nothing", under attack: fast-check throws 10,000 generated hostile callbacks at
 * the kf and Official Account routes (wrong or missing signatures, stale timestamps, DOCTYPE/ENTITY, malformed and
 * huge bodies, over-long parameters, ciphertext that does not decrypt or is for another receiver, JSON, random
 * bytes). Each must get a 4xx with a short plain-text body; nothing may be written to the store or handed off; the
 * process stays up; and the heap after GC at 10,000 is within 10 MB of the value at 1,000 (vitest runs with
 * --expose-gc).
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { computeSignature, encrypt, parseEncodingAesKey } from '../../src/crypto/wxbizmsgcrypt.js';
import { createDeps, type Deps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import type { Store } from '../../src/store/types.js';
import { buildMpPush, textMsg } from '../fakes/wechat-mp-push.js';
import { mpSignature } from '../fakes/wechat-mp-reference-crypto.js';
import { CREDS, LogSink } from '../helpers/harness.js';
import { MP } from '../helpers/mp-harness.js';

const RUNS = 10_000;
const MAX = 4096;
const WRITES = ['set', 'del', 'delIfEquals', 'setIfAbsent', 'incr', 'acquireLock', 'markWanted'] as const;

let app: FastifyInstance;
let deps: Deps;
let writes = 0;

beforeAll(async () => {
  const config = loadConfig({
    WECOM_CORP_ID: CREDS.corpId,
    WECOM_KF_SECRET: 'fuzz-secret',
    WECOM_TOKEN: CREDS.token,
    WECOM_ENCODING_AES_KEY: CREDS.encodingAesKey,
    WECOM_API_BASE_URL: 'http://127.0.0.1:9',
    WECHAT_MP_APP_ID: MP.appId,
    WECHAT_MP_TOKEN: MP.token,
    WECHAT_MP_ENCODING_AES_KEY: MP.encodingAesKey,
    WECHAT_MP_REPLY_MODE: 'passive',
    MAX_BODY_BYTES: String(MAX),
    LOG_LEVEL: 'silent',
  });
  deps = await createDeps(config, createLogger('silent', new LogSink()), { defaultMetrics: false });
  const store = deps.store as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of WRITES satisfies ReadonlyArray<keyof Store>) {
    const original = store[name]!.bind(store);
    store[name] = (...a: unknown[]) => {
      writes += 1;
      return original(...a);
    };
  }
  // ... and every hand-off to the job queue (the routes and the puller hold this same object).
  const handOff = deps.jobs.handOff.bind(deps.jobs);
  deps.jobs.handOff = (jobs) => {
    writes += 1;
    return handOff(jobs);
  };
  app = buildApp(deps.app);
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await deps?.close(1000);
});

const nowS = () => Math.floor(Date.now() / 1000);
const kfKey = parseEncodingAesKey(CREDS.encodingAesKey);
const mpKey = parseEncodingAesKey(MP.encodingAesKey);
const text = fc.string({ maxLength: 300 });
const junk = fc.oneof(text, fc.string({ unit: 'binary', maxLength: 300 }), fc.constantFrom('', ' ', '+', '%', '%00', '<', '{}'));

/** A request: method, path with query, body and content type. */
interface Attack {
  method: 'GET' | 'POST';
  url: string;
  body: string;
  type: string | null;
}

const q = (pairs: Record<string, string>) => Object.entries(pairs).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');

/** Envelopes signed with the right Token around something that must still be refused. */
const kfSigned = fc.record({ inner: junk, receiver: fc.constantFrom(CREDS.corpId, 'wwOTHER', ''), skew: fc.constantFrom(0, 0, 100_000) }).map(({ inner, receiver, skew }): Attack => {
  const ts = String(nowS() - skew);
  const enc = encrypt(kfKey, inner.includes('<xml>') ? inner : `<xml><Bad>${inner}`, receiver);
  const body = `<xml><Encrypt><![CDATA[${enc}]]></Encrypt></xml>`;
  return { method: 'POST', url: `/wecom/kf/callback?${q({ msg_signature: computeSignature(CREDS.token, ts, 'n1', enc), timestamp: ts, nonce: 'n1' })}`, body, type: 'text/xml' };
});

/** Hostile bodies under a correctly signed plaintext OA query: malformed, DOCTYPE/ENTITY, no fields. */
const mpPlain = fc.oneof(junk, fc.constantFrom('<!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>', '<xml><FromUserName>a:b</FromUserName></xml>', '<xml><x>'), text.map((t) => `<xml>${t}</xml>`)).map((body): Attack => {
  const ts = String(nowS());
  return { method: 'POST', url: `/wechat/mp/callback?${q({ signature: mpSignature(MP.token, ts, 'n2'), timestamp: ts, nonce: 'n2' })}`, body, type: null };
});

/** A real OA push (compatible or safe) with one part broken. */
const mpBroken = fc.record({ mode: fc.constantFrom('compatible', 'safe') as fc.Arbitrary<'compatible' | 'safe'>, part: fc.constantFrom('sig', 'msgsig', 'ts', 'enc', 'appid'), noise: text }).map(({ mode, part, noise }): Attack => {
  const push = buildMpPush(MP, mode, textMsg(MP, 'oFuzz', noise || 'x'));
  let { query, body } = push;
  if (part === 'sig') query = query.replace(/signature=[0-9a-f]{4}/, 'signature=0000');
  if (part === 'msgsig') query = query.replace(/msg_signature=[0-9a-f]{4}/, 'msg_signature=ffff');
  if (part === 'ts') query = query.replace(/timestamp=\d+/, 'timestamp=1000000000');
  if (part === 'enc') body = body.replace(/<Encrypt><!\[CDATA\[.{8}/, '<Encrypt><![CDATA[AAAAAAAA');
  if (part === 'appid') {
    const enc = encrypt(mpKey, '<xml><FromUserName>o</FromUserName></xml>', 'wxOTHER');
    const ts = String(nowS());
    query = q({ signature: mpSignature(MP.token, ts, 'n3'), timestamp: ts, nonce: 'n3', encrypt_type: 'aes', msg_signature: computeSignature(MP.token, ts, 'n3', enc) });
    body = `<xml><ToUserName>${MP.ghId}</ToUserName><Encrypt><![CDATA[${enc}]]></Encrypt></xml>`;
  }
  return { method: 'POST', url: `/wechat/mp/callback?${query}`, body, type: 'text/xml' };
});

/** Anything at all: random paths' queries and bodies, huge bodies, long parameters, GET checks. */
const random = fc.record({
  route: fc.constantFrom('/wecom/kf/callback', '/wechat/mp/callback'),
  method: fc.constantFrom('GET', 'POST') as fc.Arbitrary<'GET' | 'POST'>,
  params: fc.dictionary(fc.constantFrom('msg_signature', 'signature', 'timestamp', 'nonce', 'echostr', 'openid', 'encrypt_type'), fc.oneof(junk, fc.constant('a'.repeat(129)))),
  body: fc.oneof(junk, fc.constant('<xml>'.padEnd(MAX + 10, 'x')), fc.constant('{"encrypt":"AAAA"}'), text.map((t) => `<xml><Encrypt>${t}</Encrypt></xml>`)),
  type: fc.constantFrom('text/xml', 'application/xml', 'text/plain', 'application/json', null),
}).map(({ route, method, params, body, type }): Attack => ({ method, url: `${route}?${q(params)}`, body, type }));

const attack = fc.oneof(kfSigned, mpPlain, mpBroken, random);

describe('hostile callbacks (fast-check)', () => {
  it(`${RUNS} generated hostile callbacks: each 4xx, nothing written or handed off, heap flat`, async () => {
    expect(typeof globalThis.gc, 'vitest must run with --expose-gc').toBe('function');
    const gc = globalThis.gc as () => void;
    let n = 0;
    let heapAt1000 = 0;
    await fc.assert(
      fc.asyncProperty(attack, async (a) => {
        const res = await app.inject({
          method: a.method,
          url: a.url,
          payload: a.method === 'POST' ? a.body : undefined,
          headers: a.type ? { 'content-type': a.type } : {},
        });
        n += 1;
        if (n === 1000) {
          gc();
          heapAt1000 = process.memoryUsage().heapUsed;
        }
        expect(res.statusCode, `${a.method} ${a.url.slice(0, 120)}`).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        expect(res.body.length).toBeLessThan(200);
        expect(res.body).not.toMatch(/\bat \w|Error:|stack/);
      }),
      { numRuns: RUNS },
    );
    gc();
    const growth = process.memoryUsage().heapUsed - heapAt1000;
    console.log(`heap growth from 1,000 to ${RUNS} hostile callbacks: ${(growth / 1024 / 1024).toFixed(2)} MB`);
    expect(n).toBeGreaterThanOrEqual(RUNS);
    expect(growth).toBeLessThan(10 * 1024 * 1024);
    expect(writes).toBe(0);
    expect(deps.jobs.size).toBe(0);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  }, 120_000);
});
