/**
 * WXBizMsgCrypt: the callback crypto shared by WeCom apps, kf, smart bots and Official Accounts in safe mode.
 * Follows docs/protocols.md kf §1 and Tencent's WXBizMsgCrypt sample code; error codes are the
 * reference library's (kf §1.4). Plain functions over an already parsed key, so callers hold no crypto state.
 *
 * Callers must check the signature before calling `decrypt`: the cipher has no MAC, and the distinct -40007 /
 * -40008 failures would otherwise be a padding oracle.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CryptoError } from '../errors.js';
import { pkcs7Pad, pkcs7Unpad } from './pkcs7.js';

const BLOCK = 32;
const RANDOM_LEN = 16;
const HEADER_LEN = RANDOM_LEN + 4;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function assertAesKey(aesKey: Buffer): void {
  if (aesKey.length !== 32) throw new CryptoError(-40004, `AES key must be 32 bytes, got ${aesKey.length}`);
}

/**
 * Turns the 43-character EncodingAESKey from the admin console into the 32-byte AES-256 key
 * (`base64(key + "=")`, kf §1.1). Throws CryptoError(-40004) unless the input is exactly 43 characters of
 * `[A-Za-z0-9]`; the message never repeats the key, because this runs at startup and ends up in logs.
 */
export function parseEncodingAesKey(encodingAesKey: string): Buffer {
  if (!/^[A-Za-z0-9]{43}$/.test(encodingAesKey)) {
    throw new CryptoError(-40004, `EncodingAESKey must be 43 characters of [A-Za-z0-9] (got ${encodingAesKey.length})`);
  }
  // The 43rd character carries 2 unused bits; Tencent's own sample key sets them, so no canonical-form check.
  const key = Buffer.from(`${encodingAesKey}=`, 'base64');
  if (key.length !== 32) throw new CryptoError(-40004, 'EncodingAESKey does not decode to 32 bytes');
  return key;
}

/**
 * `msg_signature` (kf §1.1): lowercase hex SHA-1 (40 characters) of token, timestamp (unix seconds as sent), nonce
 * and the base64 ciphertext, sorted with the default JS string order (UTF-16 code units, as the reference
 * libraries' byte sort gives for ASCII) and joined without a separator. Does not throw.
 */
export function computeSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  const joined = [token, timestamp, nonce, encrypt].sort().join('');
  return createHash('sha1').update(joined, 'utf8').digest('hex');
}

/**
 * True when `signature` equals {@link computeSignature} of the other four values, compared in constant time
 * (`crypto.timingSafeEqual`). Exact match only: an upper-case or differently sized signature is false, never an
 * exception. The reference code for a mismatch is -40001; raising it is the caller's choice.
 */
export function verifySignature(
  signature: string,
  token: string,
  timestamp: string,
  nonce: string,
  encrypt: string,
): boolean {
  const expected = Buffer.from(computeSignature(token, timestamp, nonce, encrypt), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Decrypts a base64 `Encrypt`/`encrypt`/`echostr` value with the 32-byte key from {@link parseEncodingAesKey}:
 * AES-256-CBC, IV = key[0..16), 32-byte PKCS#7, plaintext `random[16] ‖ uint32_be(len) ‖ msg ‖ receiveid` (kf §1.1).
 * Returns both parts as UTF-8 strings and does not check the receiveid (see {@link decryptAndCheck}).
 * Throws CryptoError: -40004 key not 32 bytes; -40010 not strict base64; -40007 ciphertext length not a positive
 * multiple of 16 or the decipher failed; -40008 bad padding, or fewer than 20 bytes, or a length past the end.
 */
export function decrypt(aesKey: Buffer, encrypt: string): { message: string; receiveid: string } {
  assertAesKey(aesKey);
  // Node's base64 decoder silently skips junk and accepts url-safe letters; a value that does not re-encode to
  // itself is not the canonical base64 WeChat sends. (A regex check cost 10× more on the ack path.)
  const cipherBytes = Buffer.from(encrypt, 'base64');
  if (cipherBytes.toString('base64') !== encrypt) throw new CryptoError(-40010, 'ciphertext is not valid base64');
  if (cipherBytes.length === 0 || cipherBytes.length % 16 !== 0) {
    throw new CryptoError(-40007, `ciphertext length ${cipherBytes.length} is not a positive multiple of 16`);
  }
  let padded: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-cbc', aesKey, aesKey.subarray(0, 16));
    // Node's own check only knows 16-byte blocks and rejects the pad values 17..32 that real messages carry.
    decipher.setAutoPadding(false);
    padded = Buffer.concat([decipher.update(cipherBytes), decipher.final()]);
  } catch {
    throw new CryptoError(-40007, 'AES decryption failed');
  }
  const plain = pkcs7Unpad(padded, BLOCK);
  if (plain.length < HEADER_LEN) throw new CryptoError(-40008, 'plaintext shorter than its 20-byte header');
  const msgLen = plain.readUInt32BE(RANDOM_LEN);
  if (msgLen > plain.length - HEADER_LEN) throw new CryptoError(-40008, 'message length runs past the plaintext');
  return {
    message: plain.toString('utf8', HEADER_LEN, HEADER_LEN + msgLen),
    receiveid: plain.toString('utf8', HEADER_LEN + msgLen),
  };
}

/**
 * Encrypts a reply for the passive-reply envelope: builds `random ‖ uint32_be(byteLength(message)) ‖ message ‖
 * receiveid` (UTF-8), pads to a multiple of 32 bytes and returns standard base64 with `=` padding. `random` must
 * be 16 bytes and defaults to fresh `crypto.randomBytes(16)`; pass it only for known-answer tests.
 * Throws CryptoError: -40004 key not 32 bytes; -40006 `random` not 16 bytes or the cipher failed.
 */
export function encrypt(aesKey: Buffer, message: string, receiveid: string, random?: Buffer): string {
  assertAesKey(aesKey);
  const prefix = random ?? randomBytes(RANDOM_LEN);
  if (prefix.length !== RANDOM_LEN) throw new CryptoError(-40006, `random prefix must be 16 bytes, got ${prefix.length}`);
  const msg = Buffer.from(message, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msg.length);
  const padded = pkcs7Pad(Buffer.concat([prefix, len, msg, Buffer.from(receiveid, 'utf8')]), BLOCK);
  try {
    const cipher = createCipheriv('aes-256-cbc', aesKey, aesKey.subarray(0, 16));
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(padded), cipher.final()]).toString('base64');
  } catch {
    throw new CryptoError(-40006, 'AES encryption failed');
  }
}

/**
 * {@link decrypt} plus the receiveid check of kf §1.1: returns the message only when the embedded receiveid equals
 * `receiveid` exactly (CorpID, suite id, AppID, or "" for self-built smart bots). Throws what `decrypt` throws,
 * and CryptoError(-40005) on a mismatch (the message names neither value).
 */
export function decryptAndCheck(aesKey: Buffer, encrypt: string, receiveid: string): string {
  const out = decrypt(aesKey, encrypt);
  if (out.receiveid !== receiveid) throw new CryptoError(-40005, 'receiveid does not match the configured one');
  return out.message;
}

/** The four values of a passive encrypted reply; all come from {@link encrypt} / {@link computeSignature}. */
export interface EncryptedReplyParts {
  /** base64 ciphertext */
  encrypt: string;
  /** 40-character lowercase hex `msg_signature` over token, timestamp, nonce, encrypt */
  signature: string;
  /** unix seconds as a decimal string, the same string that was signed */
  timestamp: string;
  /** the nonce that was signed (the request's, or a fresh alphanumeric one) */
  nonce: string;
}

// These values are embedded raw (XML CDATA / JSON): whitelisting their alphabets is what rules out a `]]>`.
function checkReplyParts(p: EncryptedReplyParts): void {
  const ok =
    p.encrypt.length > 0 &&
    p.encrypt.length % 4 === 0 &&
    BASE64_RE.test(p.encrypt) &&
    /^[0-9a-f]{40}$/.test(p.signature) &&
    /^[0-9]{1,20}$/.test(p.timestamp) &&
    /^[A-Za-z0-9]{1,64}$/.test(p.nonce);
  if (!ok) throw new CryptoError(-40011, 'reply fields must be base64 / hex SHA-1 / digits / alphanumeric nonce');
}

/**
 * The XML passive-reply envelope of the WXBizMsgCrypt sample (WeCom apps, kf, Official Accounts):
 * `<xml><Encrypt>…</Encrypt><MsgSignature>…</MsgSignature><TimeStamp>…</TimeStamp><Nonce>…</Nonce></xml>`, with
 * everything but TimeStamp in CDATA. Throws CryptoError(-40011) when a field is outside its alphabet.
 */
export function buildEncryptedXmlReply(p: EncryptedReplyParts): string {
  checkReplyParts(p);
  return (
    `<xml><Encrypt><![CDATA[${p.encrypt}]]></Encrypt>` +
    `<MsgSignature><![CDATA[${p.signature}]]></MsgSignature>` +
    `<TimeStamp>${p.timestamp}</TimeStamp>` +
    `<Nonce><![CDATA[${p.nonce}]]></Nonce></xml>`
  );
}

/**
 * The JSON passive-reply envelope of WXBizJsonMsgCrypt: `{"encrypt","msgsignature","timestamp","nonce"}`.
 * `timestamp` is a JSON **string** by default, as Tencent's JSON samples (Go `Timestamp string`, Python template
 * `"%(timestamp)s"`) emit it; the smart bot's reply table (wecom-aibot-protocol.md §2) documents it as an integer, so
 * `numericTimestamp` writes it as a number there. The signature covers the same digits either way.
 * Throws CryptoError(-40011) like the XML builder.
 */
export function buildEncryptedJsonReply(p: EncryptedReplyParts, o: { numericTimestamp?: boolean } = {}): string {
  checkReplyParts(p);
  const timestamp = o.numericTimestamp ? Number(p.timestamp) : p.timestamp;
  return JSON.stringify({ encrypt: p.encrypt, msgsignature: p.signature, timestamp, nonce: p.nonce });
}
