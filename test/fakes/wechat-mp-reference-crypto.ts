/**
 * An independent reference implementation of the Official Account (公众号) callback crypto, written from
 * docs/protocols.md OA §2–§3 with `node:crypto` only. It deliberately imports nothing from `src/`:
 * tests use it to check the server's own crypto from the outside, so a shared bug cannot hide in both.
 *
 * Strings are UTF-8 throughout. Signatures are lowercase hex SHA-1 (40 characters). Nothing here compares in
 * constant time: it is test code, never exposed to an attacker.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** WXBizMsgCrypt pads to 32 bytes, not to the AES block size of 16. */
const PAD_BLOCK = 32;

// JS's default sort compares UTF-16 code units; for the ASCII values WeChat signs that equals the byte order of
// Tencent's samples (PHP sort / Java Arrays.sort).
const sha1OfSorted = (parts: string[]): string =>
  createHash('sha1').update([...parts].sort().join(''), 'utf8').digest('hex');

/**
 * The query `signature` of every OA push and of the verification GET (OA §2): SHA-1 hex of token, timestamp and
 * nonce sorted lexicographically and joined without a separator. `timestamp` is unix seconds as sent. Never throws.
 */
export function mpSignature(token: string, timestamp: string, nonce: string): string {
  return sha1OfSorted([token, timestamp, nonce]);
}

/**
 * `msg_signature` of an encrypted push, and `MsgSignature` of an encrypted passive reply (OA §3, §5): SHA-1 hex of
 * the sorted, joined `[token, timestamp, nonce, encrypt]` where `encrypt` is the base64 ciphertext. Never throws.
 */
export function mpMsgSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return sha1OfSorted([token, timestamp, nonce, encrypt]);
}

/** key = base64-decode(EncodingAESKey + "="); throws unless that gives exactly 32 bytes from 43 characters. */
function aesKey(encodingAesKey43: string): Buffer {
  if (!/^[A-Za-z0-9]{43}$/.test(encodingAesKey43)) {
    throw new Error(`reference crypto: EncodingAESKey must be 43 characters of [A-Za-z0-9], got ${encodingAesKey43.length}`);
  }
  const key = Buffer.from(`${encodingAesKey43}=`, 'base64');
  if (key.length !== 32) throw new Error(`reference crypto: EncodingAESKey decodes to ${key.length} bytes, not 32`);
  return key;
}

/**
 * Encrypts `xml` as WeChat does (OA §3): plaintext `random16 ‖ uint32_be(byteLength(xml)) ‖ xml ‖ appId`, PKCS#7
 * padded by hand to a multiple of 32 bytes, AES-256-CBC with IV = key[0..16), returned as standard base64.
 * `random16` (16 bytes, default fresh random) is only for known-answer tests. Throws on a bad key or random16.
 */
export function refEncrypt(encodingAesKey43: string, xml: string, appId: string, random16?: Buffer): string {
  const key = aesKey(encodingAesKey43);
  const random = random16 ?? randomBytes(16);
  if (random.length !== 16) throw new Error(`reference crypto: random prefix must be 16 bytes, got ${random.length}`);
  const body = Buffer.from(xml, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  const plain = Buffer.concat([random, len, body, Buffer.from(appId, 'utf8')]);
  const pad = PAD_BLOCK - (plain.length % PAD_BLOCK); // 1..32: an aligned input still gets a full block
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString(
    'base64',
  );
}

/**
 * Decrypts a base64 `Encrypt` value (OA §3) and splits the plaintext into the XML and the trailing receive id (the
 * AppID for an OA); it does not compare the id, the caller does. Throws an Error naming the failure when the
 * input is not canonical base64, the ciphertext is not a positive multiple of 16 bytes, the 32-byte PKCS#7
 * padding is wrong (pad value outside 1..32 or pad bytes differing), the plaintext is shorter than its 20-byte
 * header, or the length field runs past the end.
 */
export function refDecrypt(encodingAesKey43: string, base64: string): { xml: string; appId: string } {
  const key = aesKey(encodingAesKey43);
  const bytes = Buffer.from(base64, 'base64');
  // Node's decoder skips junk silently; WeChat only ever sends canonical base64.
  if (bytes.toString('base64') !== base64) throw new Error('reference crypto: ciphertext is not canonical base64');
  if (bytes.length === 0 || bytes.length % 16 !== 0) {
    throw new Error(`reference crypto: ciphertext length ${bytes.length} is not a positive multiple of 16`);
  }
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const padded = Buffer.concat([decipher.update(bytes), decipher.final()]);
  if (padded.length % PAD_BLOCK !== 0) {
    throw new Error(`reference crypto: plaintext length ${padded.length} is not a multiple of ${PAD_BLOCK}`);
  }
  const pad = padded[padded.length - 1]!;
  if (pad < 1 || pad > PAD_BLOCK) throw new Error(`reference crypto: bad PKCS#7 pad value ${pad}`);
  for (let i = padded.length - pad; i < padded.length; i += 1) {
    if (padded[i] !== pad) throw new Error('reference crypto: PKCS#7 pad bytes differ from the pad value');
  }
  const plain = padded.subarray(0, padded.length - pad);
  if (plain.length < 20) throw new Error(`reference crypto: plaintext of ${plain.length} bytes is shorter than its header`);
  const len = plain.readUInt32BE(16);
  if (20 + len > plain.length) throw new Error(`reference crypto: length field ${len} runs past the plaintext`);
  return { xml: plain.toString('utf8', 20, 20 + len), appId: plain.toString('utf8', 20 + len) };
}
