/**
 * A fake WeChat on the push side of an Official Account (公众号): builds callbacks exactly as WeChat posts them,
 * delivers them over real HTTP with WeChat's 5-second deadline and retries, and opens the server's passive reply
 * strictly. Protocol: docs/protocols.md (OA §2 signature, §3 modes, §4 inbound XML, §5 answering).
 * Crypto comes from the independent reference implementation, never from `src/`.
 *
 * Units: `CreateTime` and `timestamp` are unix SECONDS (decimal strings in queries); every `…Ms` value is
 * milliseconds measured with performance.now().
 */
import { randomBytes, randomInt } from 'node:crypto';
import http from 'node:http';
import { SaxesParser } from 'saxes';
import { mpMsgSignature, mpSignature, refDecrypt, refEncrypt } from './wechat-mp-reference-crypto.js';

/** The OA console settings: AppID (the receive id inside ciphertexts), Token, EncodingAESKey (43), `gh_` id. */
export interface MpCreds {
  appId: string;
  token: string;
  encodingAesKey: string;
  /** The OA's original id `gh_…`: ToUserName of every push, FromUserName of every reply. */
  ghId: string;
}

/** The console's message encryption mode: 明文 / 兼容 / 安全. */
export type MpMode = 'plaintext' | 'compatible' | 'safe';

/** One push's elements in WeChat's names and order. Numbers are emitted bare. */
export type MpFields = Record<string, string | number>;

// WeChat emits these numeric elements without CDATA. MsgId (64-bit) stays a string in JS, so the name decides.
const BARE = new Set(['CreateTime', 'MsgId', 'MsgDataId', 'Idx', 'Location_X', 'Location_Y', 'Scale']);
for (const k of ['Latitude', 'Longitude', 'Precision']) BARE.add(k);
const NUMERIC = /^-?\d+(\.\d+)?$/;

// `]]>` cannot appear inside one CDATA section; split it across two, as every XML writer does.
const cdata = (v: string): string => `<![CDATA[${v.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`;

/**
 * `<xml>` with one child per field, in insertion order: numbers bare, strings in CDATA, except numeric strings
 * in the fields WeChat emits bare (CreateTime, MsgId, MsgDataId, Idx, Location_X/Y, Scale, Latitude, Longitude,
 * Precision) so a 19-digit MsgId is bare yet exact. No declaration, no whitespace, like WeChat.
 */
export function mpXml(fields: MpFields): string {
  const el = ([k, v]: [string, string | number]): string =>
    `<${k}>${typeof v === 'number' || (BARE.has(k) && NUMERIC.test(v)) ? String(v) : cdata(v)}</${k}>`;
  return `<xml>${Object.entries(fields).map(el).join('')}</xml>`;
}

const nowS = (): number => Math.floor(Date.now() / 1000);
/** 19 decimal digits, first 1..8: always a valid signed 64-bit value and always above 2^53. */
export const randomMsgId = (): string =>
  String(randomInt(1, 9)) + Array.from({ length: 18 }, () => String(randomInt(0, 10))).join('');
const mediaId = (): string => randomBytes(48).toString('base64url'); // 64 chars, like WeChat's

/** Options shared by the message builders: MsgId (default {@link randomMsgId}) and CreateTime (default now, s). */
export interface MsgOpts {
  msgid?: string;
  createTime?: number;
}

// Header, the type's own elements, then MsgId last: WeChat's element order.
const msg = (creds: MpCreds, openid: string, type: string, own: MpFields, o: MsgOpts): MpFields => ({
  ToUserName: creds.ghId,
  FromUserName: openid,
  CreateTime: o.createTime ?? nowS(),
  MsgType: type,
  ...own,
  MsgId: o.msgid ?? randomMsgId(),
});

/** A text message: Content, MsgId (19-digit string, bare in XML). */
export const textMsg = (creds: MpCreds, openid: string, content: string, msgid?: string, createTime?: number): MpFields =>
  msg(creds, openid, 'text', { Content: content }, { msgid, createTime });

/** An image message: PicUrl (WeChat-hosted), MediaId, MsgId. */
export function imageMsg(creds: MpCreds, openid: string, o: MsgOpts & { picUrl?: string; mediaId?: string } = {}): MpFields {
  const id = o.mediaId ?? mediaId();
  const PicUrl = o.picUrl ?? `http://mmbiz.qpic.cn/mmbiz_jpg/${id.slice(0, 32)}/0`;
  return msg(creds, openid, 'image', { PicUrl, MediaId: id }, o);
}

/** A voice message: MediaId, Format (default amr), MsgId, then Recognition only when `recognition` is given. */
export function voiceMsg(
  creds: MpCreds,
  openid: string,
  o: MsgOpts & { recognition?: string; mediaId?: string; format?: string } = {},
): MpFields {
  const m = msg(creds, openid, 'voice', { MediaId: o.mediaId ?? mediaId(), Format: o.format ?? 'amr' }, o);
  return o.recognition !== undefined ? { ...m, Recognition: o.recognition } : m;
}

/** A `video` message, or with `short: true` a `shortvideo` one: MediaId, ThumbMediaId, MsgId. */
export const videoMsg = (creds: MpCreds, openid: string, o: MsgOpts & { short?: boolean } = {}): MpFields =>
  msg(creds, openid, o.short === true ? 'shortvideo' : 'video', { MediaId: mediaId(), ThumbMediaId: mediaId() }, o);

/** A location message: Location_X = latitude, Location_Y = longitude (degrees, bare), Scale, Label, MsgId. */
export const locationMsg = (
  creds: MpCreds,
  openid: string,
  o: MsgOpts & { lat?: number; lng?: number; scale?: number; label?: string } = {},
): MpFields => {
  const { lat = 23.134521, lng = 113.358803, scale = 20, label = '广州市海珠区' } = o;
  return msg(creds, openid, 'location', { Location_X: lat, Location_Y: lng, Scale: scale, Label: label }, o);
};

/** A link message: Title, Description, Url, MsgId. */
export const linkMsg = (
  creds: MpCreds,
  openid: string,
  o: MsgOpts & { title?: string; description?: string; url?: string } = {},
): MpFields => {
  const { title = '公众平台官网链接', description = '公众平台官网链接', url = 'https://mp.weixin.qq.com/' } = o;
  return msg(creds, openid, 'link', { Title: title, Description: description, Url: url }, o);
};

/** Extra elements of an event push; `CreateTime` (unix s) overrides the default of now. */
export type EventExtra = Partial<Record<'EventKey' | 'Ticket' | 'MenuId', string>> &
  Partial<Record<'Latitude' | 'Longitude' | 'Precision', number>> & { CreateTime?: number } & MpFields;

/**
 * An event push (`MsgType` event, no MsgId): `event` as WeChat spells it (`subscribe`, `unsubscribe`, `SCAN`,
 * `LOCATION`, `CLICK`, `VIEW`, …) followed by `extra` in its key order, e.g. `{ EventKey: 'qrscene_42', Ticket }`.
 */
export function eventMsg(creds: MpCreds, openid: string, event: string, extra: EventExtra = {}): MpFields {
  const { CreateTime, ...rest } = extra;
  const CT = typeof CreateTime === 'number' ? CreateTime : nowS();
  return { ToUserName: creds.ghId, FromUserName: openid, CreateTime: CT, MsgType: 'event', Event: event, ...rest };
}

/** WeChat's nonces are decimal digits (9–10 of them). */
const newNonce = (): string => String(randomInt(100_000_000, 2_147_483_647));
const q = (pairs: Array<[string, string]>): string => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');

/**
 * One push as WeChat posts it in `mode`: the query string (no leading `?`) and the XML body. Query: `signature,
 * timestamp, nonce, openid` (openid = fields.FromUserName unless given), then `encrypt_type=aes&msg_signature`
 * unless plaintext. Body: plaintext = the fields; compatible = the fields then `Encrypt`; safe = only `ToUserName`
 * and `Encrypt`. The ciphertext wraps `mpXml(fields)` with the AppID as receive id. `timestamp` defaults to now
 * (s), `nonce` to fresh digits. Throws on a bad EncodingAESKey.
 */
export function buildMpPush(
  creds: MpCreds,
  mode: MpMode,
  fields: MpFields,
  opts: { timestamp?: string; nonce?: string; openid?: string } = {},
): { query: string; body: string } {
  const timestamp = opts.timestamp ?? String(nowS());
  const nonce = opts.nonce ?? newNonce();
  const openid = opts.openid ?? String(fields.FromUserName ?? '');
  const signature = mpSignature(creds.token, timestamp, nonce);
  const pairs: Array<[string, string]> = [['signature', signature], ['timestamp', timestamp], ['nonce', nonce], ['openid', openid]];
  if (mode === 'plaintext') return { query: q(pairs), body: mpXml(fields) };
  const enc = refEncrypt(creds.encodingAesKey, mpXml(fields), creds.appId);
  pairs.push(['encrypt_type', 'aes'], ['msg_signature', mpMsgSignature(creds.token, timestamp, nonce, enc)]);
  const safe = { ToUserName: String(fields.ToUserName ?? creds.ghId), Encrypt: enc };
  return { query: q(pairs), body: mpXml(mode === 'compatible' ? { ...fields, Encrypt: enc } : safe) };
}

/** The query of the verification GET (OA §2): `signature, echostr, timestamp, nonce` in WeChat's order. */
export function buildMpVerifyQuery(
  token: string,
  echostr: string,
  opts: { timestamp?: string; nonce?: string } = {},
): { query: string } {
  const timestamp = opts.timestamp ?? String(nowS());
  const nonce = opts.nonce ?? newNonce();
  const signature = mpSignature(token, timestamp, nonce);
  return { query: q([['signature', signature], ['echostr', echostr], ['timestamp', timestamp], ['nonce', nonce]]) };
}

// ---------------------------------------------------------------- reading the server's reply

type Node = { name: string; text: string; children: Node[] };

/** Strict XML → tree with saxes; throws a message naming `what` when the body is not well-formed. */
function parseTree(xml: string, what: string): Node {
  if (/<!\s*(DOCTYPE|ENTITY)/i.test(xml)) throw new Error(`${what}: DOCTYPE/ENTITY not allowed`);
  const parser = new SaxesParser();
  const stack: Node[] = [];
  let root: Node | null = null;
  parser.on('opentag', (t) => {
    const n: Node = { name: t.name, text: '', children: [] };
    stack.at(-1)?.children.push(n);
    stack.push(n);
  });
  const onText = (t: string): void => {
    const top = stack.at(-1);
    if (top) top.text += t;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('closetag', () => {
    const done = stack.pop()!;
    if (stack.length === 0) root = done;
  });
  try {
    parser.write(xml).close();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`${what}: not well-formed XML (${why}): ${xml.slice(0, 200)}`, { cause: e });
  }
  const r = root as Node | null;
  if (r === null || r.name !== 'xml') throw new Error(`${what}: root element must be <xml>: ${xml.slice(0, 200)}`);
  return r;
}

/**
 * Flattens element children: a leaf gives its exact text (CDATA unwrapped, not trimmed); nested leaves get
 * dotted paths (`Image.MediaId`, `Articles.item.Title`), a repeated sibling `[i]` from its second occurrence
 * (`Articles.item[1].Title`). Throws on a repeated top-level element or text mixed with elements.
 */
function flatten(node: Node, prefix: string, out: Record<string, string>, what: string): void {
  const seen = new Map<string, number>();
  for (const c of node.children) {
    const n = seen.get(c.name) ?? 0;
    seen.set(c.name, n + 1);
    if (n > 0 && prefix === '') throw new Error(`${what}: element <${c.name}> appears more than once`);
    const key = `${prefix}${c.name}${n > 0 ? `[${n}]` : ''}`;
    if (c.children.length === 0) out[key] = c.text;
    else if (c.text.trim() !== '') throw new Error(`${what}: <${c.name}> mixes text and elements`);
    else flatten(c, `${key}.`, out, what);
  }
}

const REPLY_TYPES = new Set(['text', 'image', 'voice', 'video', 'music', 'news', 'transfer_customer_service']);
const ENVELOPE = ['Encrypt', 'MsgSignature', 'TimeStamp', 'Nonce'];

/**
 * Opens the server's passive reply (OA §5) as WeChat would. `req.encrypted` says whether the push carried
 * `encrypt_type=aes`; `req.openid`, when given, must equal the reply's ToUserName.
 * Encrypted: the body must be `<xml>` holding exactly Encrypt, MsgSignature, TimeStamp (digits), Nonce, once
 * each, case-sensitive; `signatureOk` reports the MsgSignature check (the caller asserts it: the fields are
 * still decrypted so a test can show what was sent); the receive id must be `creds.appId`. Plaintext: the body is
 * the reply itself, `signatureOk` is true. Either way the reply needs ToUserName, FromUserName = `creds.ghId`,
 * a digits-only CreateTime and a known MsgType. Returns the reply fields flattened (see `Image.MediaId`).
 * Throws an Error naming the problem for `success`/empty bodies (not replies), malformed XML, a wrong envelope,
 * a failed decryption, a foreign AppID, or a reply missing those fields.
 */
export function openPassiveReply(
  creds: MpCreds,
  body: string,
  req: { encrypted: boolean; openid?: string },
): { fields: Record<string, string>; encrypted: boolean; signatureOk: boolean; timestamp?: string; nonce?: string } {
  if (body === '' || body === 'success') throw new Error(`passive reply: body is ${JSON.stringify(body)}, not a reply`);
  const outer: Record<string, string> = {};
  flatten(parseTree(body, 'passive reply'), '', outer, 'passive reply');
  let fields = outer;
  let result: { signatureOk: boolean; timestamp?: string; nonce?: string } = { signatureOk: true };
  if (req.encrypted) {
    const names = Object.keys(outer);
    if (names.length !== 4 || !ENVELOPE.every((n) => n in outer)) {
      throw new Error(`encrypted passive reply must hold exactly ${ENVELOPE.join(', ')}; got ${names.join(', ')}`);
    }
    const { Encrypt: enc, MsgSignature: sig, TimeStamp: ts, Nonce: nonce } = outer as Record<string, string>;
    if (!/^\d+$/.test(ts!)) throw new Error(`encrypted passive reply: TimeStamp ${JSON.stringify(ts)} is not digits`);
    const signatureOk = sig === mpMsgSignature(creds.token, ts!, nonce!, enc!);
    const inner = refDecrypt(creds.encodingAesKey, enc!);
    if (inner.appId !== creds.appId) {
      throw new Error(`encrypted passive reply: receive id ${JSON.stringify(inner.appId)} is not the AppID`);
    }
    fields = {};
    flatten(parseTree(inner.xml, 'decrypted passive reply'), '', fields, 'decrypted passive reply');
    result = { signatureOk, timestamp: ts!, nonce: nonce! };
  } else if ('Encrypt' in outer) {
    throw new Error('passive reply: encrypted envelope answered to a plaintext push');
  }
  const f = (k: string): string => JSON.stringify(fields[k]);
  const problems = [
    !fields.ToUserName || (req.openid ?? fields.ToUserName) !== fields.ToUserName ? `ToUserName ${f('ToUserName')} wrong` : '',
    fields.FromUserName !== creds.ghId ? `FromUserName ${f('FromUserName')} is not ${creds.ghId}` : '',
    !/^\d+$/.test(fields.CreateTime ?? '') ? `CreateTime ${f('CreateTime')} is not unix seconds` : '',
    !REPLY_TYPES.has(fields.MsgType ?? '') ? `MsgType ${f('MsgType')} is not a reply type` : '',
  ].filter((p) => p !== '');
  if (problems.length > 0) throw new Error(`passive reply: ${problems.join('; ')}`);
  return { fields, encrypted: req.encrypted, ...result };
}

// ---------------------------------------------------------------- delivery with WeChat's deadline and retries

/** One delivery attempt: start (ms after the first), HTTP status (null: cut or socket error), body, duration. */
export interface DeliveryAttempt {
  startedMs: number;
  status: number | null;
  body: string;
  ms: number;
  /** true when WeChat's deadline cut the attempt (request aborted) */
  cut: boolean;
  /** the socket error, when there was one */
  error?: string;
}
/** Every attempt, and the one 200 answer that ended the delivery (null: failed, the user saw 暂时无法提供服务). */
export interface DeliveryResult {
  attempts: DeliveryAttempt[];
  answered: { status: number; body: string; attempt: number } | null;
}

/** One POST (fresh connection, like WeChat) that is aborted at `deadlineMs`; never rejects. */
function postOnce(url: URL, body: string, deadlineMs: number): Promise<Omit<DeliveryAttempt, 'startedMs' | 'ms'>> {
  const payload = Buffer.from(body, 'utf8');
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Omit<DeliveryAttempt, 'startedMs' | 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const headers = { 'content-type': 'text/xml', 'content-length': payload.length, 'user-agent': 'Mozilla/4.0' };
    const req = http.request(url, { method: 'POST', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), cut: false }));
      res.on('error', (e) => finish({ status: null, body: '', cut: false, error: e.message }));
    });
    // The whole answer must be in by the deadline; a late status line or body counts as no answer.
    const timer = setTimeout(() => {
      finish({ status: null, body: '', cut: true });
      req.destroy();
    }, deadlineMs);
    req.on('error', (e) => finish({ status: null, body: '', cut: false, error: e.message }));
    req.end(payload);
  });
}

/**
 * Delivers one push the way WeChat does (OA §5): attempt k (1-based) starts (k−1)·deadlineMs after the first, or at
 * once if the previous one ran past that; each is a real POST of `makePush(k)` (re-signed per attempt if the
 * caller wishes, same fields) to `baseUrl + path + '?' + query`, `Content-Type: text/xml`, cut (aborted) at
 * `deadlineMs` (default 5000). HTTP 200 with any body ends the delivery; a cut, a non-200 status or a socket
 * error counts as no answer. After `attempts` (default 3) without one, `answered` is null. Never rejects.
 */
export async function deliverLikeWechat(
  baseUrl: string,
  path: string,
  makePush: (attempt: number) => { query: string; body: string },
  opts: { deadlineMs?: number; attempts?: number } = {},
): Promise<DeliveryResult> {
  const deadlineMs = opts.deadlineMs ?? 5000;
  const total = opts.attempts ?? 3;
  const t0 = performance.now();
  const attempts: DeliveryAttempt[] = [];
  for (let k = 1; k <= total; k += 1) {
    const wait = (k - 1) * deadlineMs - (performance.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const push = makePush(k);
    const url = new URL(`${baseUrl}${path}${path.includes('?') ? '&' : '?'}${push.query}`);
    const started = performance.now();
    const r = await postOnce(url, push.body, deadlineMs);
    attempts.push({ startedMs: started - t0, ms: performance.now() - started, ...r });
    if (r.status === 200) return { attempts, answered: { status: 200, body: r.body, attempt: k } };
  }
  return { attempts, answered: null };
}
