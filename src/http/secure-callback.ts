import { decrypt, verifySignature } from '../crypto/wxbizmsgcrypt.js';
import { CryptoError } from '../errors.js';
import { XmlError, parseXml, xmlText } from '../xml/parse.js';
import { HttpError } from './http-error.js';

/** What a channel needs to open its callbacks (WXBizMsgCrypt). */
export interface CallbackSecrets {
  token: string;
  /** the 32-byte key from `parseEncodingAesKey` */
  aesKey: Buffer;
  /** CorpID for kf, AppID for Official Accounts, '' for smart bots */
  receiveid: string;
}

const MAX_PARAM_CHARS = 128;
/**
 * Commas, `[` and `{` a JSON envelope may hold. The real one is `{"encrypt":"…"}` (base64 has none of them); a
 * stranger's 64 KB object of thousands of members, or arrays nested thousands deep, costs milliseconds to parse
 * before the signature can refuse it, so such a body is refused after a scan that stops at the limit instead.
 */
const MAX_JSON_STRUCTURE = 64;

/**
 * Required query parameters, in docs/configuration.md's check order: missing, empty or over 128 characters → 400.
 * @returns the values by name
 */
export function requireParams<N extends string>(query: Record<string, string>, names: readonly N[]): Record<N, string> {
  const out = {} as Record<N, string>;
  for (const name of names) {
    const v = query[name];
    if (!v) throw new HttpError(400, 'missing_param', `missing query parameter ${name}`);
    if (v.length > MAX_PARAM_CHARS) throw new HttpError(400, 'long_param', `query parameter ${name} is too long`);
    out[name] = v;
  }
  return out;
}

/**
 * The `Encrypt` value of an encrypted callback body: XML (`<xml><Encrypt>…</Encrypt></xml>`, apps, kf, OA) or
 * JSON (`{"encrypt": …}`, key matched case-insensitively, WXBizJsonMsgCrypt).
 * @throws HttpError 400 when the body is not well-formed, has a DOCTYPE/ENTITY, or carries no Encrypt
 */
export function extractEncrypt(body: string): string {
  const trimmed = body.trimStart();
  let encrypt: unknown;
  if (trimmed.startsWith('{')) {
    if (countStructure(trimmed, MAX_JSON_STRUCTURE) > MAX_JSON_STRUCTURE) throw new HttpError(400, 'malformed', 'JSON body has too many members');
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new HttpError(400, 'malformed', 'body is not well-formed JSON');
    }
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const entry = Object.entries(parsed).find(([k]) => k.toLowerCase() === 'encrypt');
      encrypt = entry?.[1];
    }
  } else {
    try {
      encrypt = xmlText(parseXml(body), 'Encrypt');
    } catch (e) {
      if (e instanceof XmlError) throw new HttpError(400, e.problem, e.message);
      throw e;
    }
  }
  if (typeof encrypt !== 'string' || encrypt === '') throw new HttpError(400, 'no_encrypt', 'body has no Encrypt');
  return encrypt;
}

/** Commas, `[` and `{` in `s`; counting stops past `limit`. */
function countStructure(s: string, limit: number): number {
  const structure = /[,[{]/g;
  let n = 0;
  while (n <= limit && structure.test(s)) n++;
  return n;
}

/**
 * Signature, then (POST only) timestamp skew, then AES, then receiveid — docs/configuration.md's order and statuses.
 * @param p.signature `msg_signature` from the query
 * @param p.maxSkewS seconds; 0 disables the timestamp check (GET passes 0: WeCom's URL check is not replayable)
 * @param p.nowS current unix time in seconds
 * @returns the decrypted message (UTF-8 text, XML or JSON depending on the channel)
 * @throws HttpError 401 bad_signature / stale_timestamp / bad_receiveid, 400 decrypt_failed
 */
export function openEncrypted(p: {
  secrets: CallbackSecrets;
  signature: string;
  timestamp: string;
  nonce: string;
  encrypt: string;
  maxSkewS: number;
  nowS: number;
}): string {
  const { secrets } = p;
  if (!verifySignature(p.signature, secrets.token, p.timestamp, p.nonce, p.encrypt)) {
    throw new HttpError(401, 'bad_signature', 'signature mismatch');
  }
  if (p.maxSkewS > 0) {
    const ts = /^\d{1,12}$/.test(p.timestamp) ? Number(p.timestamp) : NaN;
    if (!(Math.abs(p.nowS - ts) <= p.maxSkewS)) throw new HttpError(401, 'stale_timestamp', 'timestamp out of range');
  }
  let opened: { message: string; receiveid: string };
  try {
    opened = decrypt(secrets.aesKey, p.encrypt);
  } catch (e) {
    if (e instanceof CryptoError) throw new HttpError(400, 'decrypt_failed', `cannot decrypt (${e.code})`);
    throw e;
  }
  if (opened.receiveid !== secrets.receiveid) throw new HttpError(401, 'bad_receiveid', 'receiveid mismatch');
  return opened.message;
}
