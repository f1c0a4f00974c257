/**
 * WeCom's own side of the smart-bot (智能机器人) crypto, written from wecom-aibot-protocol.md §2, §3 (media) and
 * §9.3 (long-connection media) with `node:crypto` only. It deliberately imports nothing from `src/`: tests hold the
 * server's crypto against it from the outside, so a shared bug cannot hide in both.
 *
 * Callback payloads use the JSON flavour of WXBizMsgCrypt: AES-256-CBC, key = base64(EncodingAESKey + "="),
 * IV = key[0..16), PKCS#7 padding to 32-byte blocks, plaintext = random16 ‖ uint32be(len) ‖ msg ‖ receiveid, and the
 * receive id of an enterprise-internal robot is the empty string. Strings are UTF-8; signatures are lowercase hex
 * SHA-1 (40 characters). Nothing compares in constant time: test code, never exposed to an attacker.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** The receive id WeCom puts in (and expects in) every smart-bot ciphertext: empty. */
export const BOT_RECEIVE_ID = '';

/** WXBizMsgCrypt and WeCom's media encryption pad to 32 bytes, not to the AES block size of 16. */
const PAD_BLOCK = 32;

/** key = base64-decode(EncodingAESKey + "="); throws unless 43 characters of [A-Za-z0-9] give exactly 32 bytes. */
export function botAesKey(encodingAesKey: string): Buffer {
  if (!/^[A-Za-z0-9]{43}$/.test(encodingAesKey)) {
    throw new Error(`bot reference crypto: EncodingAESKey must be 43 characters of [A-Za-z0-9], got ${encodingAesKey.length}`);
  }
  const key = Buffer.from(`${encodingAesKey}=`, 'base64');
  if (key.length !== 32) throw new Error(`bot reference crypto: EncodingAESKey decodes to ${key.length} bytes, not 32`);
  return key;
}

/**
 * `msg_signature` of a callback (query) and `msgsignature` of an encrypted reply (body): SHA-1 hex of
 * `[token, timestamp, nonce, encrypt]` sorted (JS code-unit order, = byte order for the ASCII values signed) and
 * joined without separator. `timestamp` is unix SECONDS as a decimal string. Never throws.
 */
export function botSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypt].sort().join(''), 'utf8').digest('hex');
}

/** PKCS#7 to a multiple of 32: 1..32 bytes of value n, a full block when already aligned. */
function pad32(data: Buffer): Buffer {
  const n = PAD_BLOCK - (data.length % PAD_BLOCK);
  return Buffer.concat([data, Buffer.alloc(n, n)]);
}

/** Checks and strips 32-byte PKCS#7; throws naming the fault (pad value outside 1..32, bytes differing). */
function unpad32(padded: Buffer): Buffer {
  if (padded.length === 0 || padded.length % PAD_BLOCK !== 0) {
    throw new Error(`bot reference crypto: plaintext length ${padded.length} is not a positive multiple of ${PAD_BLOCK}`);
  }
  const n = padded[padded.length - 1]!;
  if (n < 1 || n > PAD_BLOCK) throw new Error(`bot reference crypto: bad PKCS#7 pad value ${n}`);
  for (let i = padded.length - n; i < padded.length; i += 1) {
    if (padded[i] !== n) throw new Error('bot reference crypto: PKCS#7 pad bytes differ from the pad value');
  }
  return padded.subarray(0, padded.length - n);
}

/** AES-256-CBC with IV = key[0..16) and no automatic padding (the caller pads to 32). */
function cbc(mode: 'encrypt' | 'decrypt', key: Buffer, data: Buffer): Buffer {
  const c = mode === 'encrypt' ? createCipheriv('aes-256-cbc', key, key.subarray(0, 16)) : createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/**
 * Encrypts `plaintext` (the callback's or reply's JSON text) as WeCom does and returns standard base64:
 * `random16 ‖ uint32be(byteLength) ‖ plaintext ‖ receiveid`, padded to 32, AES-256-CBC. `receiveid` defaults to
 * "" (smart bot); pass another only to forge hostile input. `random16` (16 bytes, default fresh) is for
 * known-answer tests. Throws on a bad key or random16.
 */
export function botEncrypt(encodingAesKey: string, plaintext: string, receiveid = BOT_RECEIVE_ID, random16?: Buffer): string {
  const key = botAesKey(encodingAesKey);
  const random = random16 ?? randomBytes(16);
  if (random.length !== 16) throw new Error(`bot reference crypto: random prefix must be 16 bytes, got ${random.length}`);
  const body = Buffer.from(plaintext, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return cbc('encrypt', key, pad32(Buffer.concat([random, len, body, Buffer.from(receiveid, 'utf8')]))).toString('base64');
}

/**
 * Decrypts a base64 `encrypt` value and splits the plaintext into the message and the trailing receive id (not
 * compared here: the caller checks it is ""). Throws an Error naming the failure when the input is not canonical
 * base64, not a positive multiple of 16 bytes, badly padded, shorter than its 20-byte header, or when the length
 * field runs past the end.
 */
export function botDecrypt(encodingAesKey: string, base64: string): { plaintext: string; receiveid: string } {
  const key = botAesKey(encodingAesKey);
  const bytes = Buffer.from(base64, 'base64');
  // Node's decoder skips junk silently; WeCom only ever sends canonical base64.
  if (bytes.toString('base64') !== base64) throw new Error('bot reference crypto: ciphertext is not canonical base64');
  if (bytes.length === 0 || bytes.length % 16 !== 0) {
    throw new Error(`bot reference crypto: ciphertext length ${bytes.length} is not a positive multiple of 16`);
  }
  const plain = unpad32(cbc('decrypt', key, bytes));
  if (plain.length < 20) throw new Error(`bot reference crypto: plaintext of ${plain.length} bytes is shorter than its header`);
  const len = plain.readUInt32BE(16);
  if (20 + len > plain.length) throw new Error(`bot reference crypto: length field ${len} runs past the plaintext`);
  return { plaintext: plain.toString('utf8', 20, 20 + len), receiveid: plain.toString('utf8', 20 + len) };
}

/** The 32-byte key of a media call: a 43-character EncodingAESKey, or the raw key itself. */
const mediaKey = (aesKey: string | Buffer): Buffer => {
  if (typeof aesKey === 'string') return botAesKey(aesKey);
  if (aesKey.length !== 32) throw new Error(`bot reference crypto: raw AES key must be 32 bytes, got ${aesKey.length}`);
  return aesKey;
};

/**
 * The bytes WeCom serves at an `image.url` / `file.url` / `video.url` in callback mode (§3 media download):
 * AES-256-CBC of `bytes` padded to 32 with PKCS#7, key = the bot's AES key (`aesKey`: the 43-character
 * EncodingAESKey or the raw 32-byte key), IV = key[0..16). No header, no length field, no receive id.
 */
export function encryptMedia(bytes: Buffer, aesKey: string | Buffer): Buffer {
  return cbc('encrypt', mediaKey(aesKey), pad32(bytes));
}

/** Inverse of {@link encryptMedia}; throws when the length is not a positive multiple of 32 or the padding is bad. */
export function decryptMedia(encrypted: Buffer, aesKey: string | Buffer): Buffer {
  if (encrypted.length === 0 || encrypted.length % PAD_BLOCK !== 0) {
    throw new Error(`bot reference crypto: media length ${encrypted.length} is not a positive multiple of ${PAD_BLOCK}`);
  }
  return Buffer.from(unpad32(cbc('decrypt', mediaKey(aesKey), encrypted)));
}

/** key = base64-decode(aeskey) (with or without the trailing "="); throws unless that gives 32 bytes. */
function aeskeyBytes(aeskeyBase64: string): Buffer {
  const key = Buffer.from(aeskeyBase64, 'base64');
  if (key.length !== 32) throw new Error(`bot reference crypto: aeskey decodes to ${key.length} bytes, not 32`);
  return key;
}

/**
 * Long-connection media (§9.3): each URL comes with its own `aeskey`; the file is AES-256-CBC with
 * key = base64-decode(aeskey), IV = its first 16 bytes, PKCS#7 padded to 32.
 */
export function encryptWithAeskey(bytes: Buffer, aeskeyBase64: string): Buffer {
  return cbc('encrypt', aeskeyBytes(aeskeyBase64), pad32(bytes));
}

/** Inverse of {@link encryptWithAeskey}; throws on a bad length, key or padding. */
export function decryptWithAeskey(encrypted: Buffer, aeskeyBase64: string): Buffer {
  return decryptMedia(encrypted, aeskeyBytes(aeskeyBase64));
}

/** A fresh per-URL `aeskey`: 32 random bytes as standard base64 (44 characters; WeCom's exact spelling is unconfirmed). */
export const newAeskey = (): string => randomBytes(32).toString('base64');

/**
 * A fresh EncodingAESKey: 43 random characters of [A-Za-z0-9]. The last character's low 2 bits are dropped by the
 * decoding, and are often non-zero in real keys (the official samples' key ends in `C`), so they are left random.
 */
export function newEncodingAesKey(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(43), (b) => alphabet[b % alphabet.length]).join('');
}

/**
 * The reference crypto bound to one bot's Token and EncodingAESKey: `encrypt(plaintext, receiveid = "")`,
 * `decrypt(base64)`, `sign(timestamp, nonce, encrypt)` (timestamp in unix SECONDS as a string).
 */
export function botCrypto(token: string, encodingAesKey: string): {
  encrypt: (plaintext: string, receiveid?: string) => string;
  decrypt: (base64: string) => { plaintext: string; receiveid: string };
  sign: (timestamp: string, nonce: string, encrypt: string) => string;
} {
  botAesKey(encodingAesKey);
  return {
    encrypt: (plaintext, receiveid = BOT_RECEIVE_ID) => botEncrypt(encodingAesKey, plaintext, receiveid),
    decrypt: (base64) => botDecrypt(encodingAesKey, base64),
    sign: (timestamp, nonce, encrypt) => botSignature(token, timestamp, nonce, encrypt),
  };
}
