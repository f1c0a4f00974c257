// The smart-bot reference crypto against the official WXBizMsgCrypt vectors (every vector: none has receiveid ""
// — the scheme is the same, only the receive id differs), round trips with receiveid "", the 32-byte padding, and
// the two media encryptions. Independent of src/: only node:crypto for the hand-made cross-checks.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BOT_RECEIVE_ID, botAesKey, botCrypto, botDecrypt, botEncrypt, botSignature, decryptMedia, decryptWithAeskey,
  encryptMedia, encryptWithAeskey, newAeskey, newEncodingAesKey,
} from './wecom-bot-reference-crypto.js';

type Vector = Record<'id' | 'kind' | 'token' | 'encoding_aes_key' | 'receiveid' | 'encrypt' | 'expected_plaintext', string> &
  Partial<Record<'timestamp' | 'nonce' | 'msg_signature' | 'random' | 'raw_query' | 'raw_body', string>> & {
    padding_bytes: number;
  };
interface Fixture {
  vectors: Vector[];
  negative_cases: Array<{ of: string; change: { msg_signature?: string; receiveid?: string } }>;
}
const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/wxbizmsgcrypt-vectors.json', import.meta.url), 'utf8'),
) as Fixture;
const VECTORS = FIXTURE.vectors;
const KEY = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const TOKEN = 'QDG6eK';

/** Raw AES-256-CBC decryption without unpadding, for byte-level layout checks. */
function rawDecrypt(key: Buffer, data: Buffer): Buffer {
  const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  d.setAutoPadding(false);
  return Buffer.concat([d.update(data), d.final()]);
}

describe('official vectors', () => {
  it('the fixture holds the vectors these tests iterate over', () => {
    expect(VECTORS.length).toBeGreaterThanOrEqual(11);
    // None uses the smart bot's empty receive id: the round trips below cover it.
    expect(VECTORS.filter((v) => v.receiveid === '')).toEqual([]);
  });

  const named = (vs: Vector[]): Array<readonly [string, Vector]> => vs.map((v) => [v.id, v] as const);

  it.each(named(VECTORS))('%s decrypts to the expected plaintext and receive id, with the recorded padding', (_id, v) => {
    expect(botDecrypt(v.encoding_aes_key, v.encrypt)).toEqual({ plaintext: v.expected_plaintext, receiveid: v.receiveid });
    const padded = rawDecrypt(botAesKey(v.encoding_aes_key), Buffer.from(v.encrypt, 'base64'));
    expect(padded.at(-1)).toBe(v.padding_bytes);
  });

  it.each(named(VECTORS.filter((v) => v.msg_signature !== undefined)))('%s has a valid msg_signature', (_id, v) => {
    expect(botSignature(v.token, v.timestamp!, v.nonce!, v.encrypt)).toBe(v.msg_signature);
    expect(botSignature(v.token, v.timestamp!, `${v.nonce!}1`, v.encrypt)).not.toBe(v.msg_signature);
  });

  it.each(named(VECTORS.filter((v) => v.raw_query !== undefined)))('%s: the URL-decoded raw query verifies', (_id, v) => {
    const q = new URLSearchParams(v.raw_query);
    expect(q.get('echostr')).toBe(v.encrypt);
    expect(botSignature(v.token, q.get('timestamp')!, q.get('nonce')!, q.get('echostr')!)).toBe(q.get('msg_signature'));
  });

  it.each(named(VECTORS.filter((v) => v.random !== undefined)))('%s re-encrypts with its random prefix', (_id, v) => {
    expect(botEncrypt(v.encoding_aes_key, v.expected_plaintext, v.receiveid, Buffer.from(v.random!, 'utf8'))).toBe(v.encrypt);
  });

  it('negative cases: a wrong signature does not verify, a wrong receive id is visible', () => {
    for (const n of FIXTURE.negative_cases) {
      const v = VECTORS.find((x) => x.id === n.of)!;
      if (n.change.msg_signature !== undefined) {
        expect(botSignature(v.token, v.timestamp!, v.nonce!, v.encrypt)).not.toBe(n.change.msg_signature);
      }
      if (n.change.receiveid !== undefined) {
        expect(botDecrypt(v.encoding_aes_key, v.encrypt).receiveid).not.toBe(n.change.receiveid);
      }
    }
  });
});

describe('JSON callbacks with receiveid ""', () => {
  it('round-trips JSON with CJK, emoji and every length around the 32-byte block (pad 1..32)', () => {
    const pads = new Set<number>();
    for (let n = 0; n < 80; n += 1) {
      const json = JSON.stringify({ msgtype: 'text', text: { content: `${'中😀'.repeat(n % 3)}${'x'.repeat(n)}` } });
      const enc = botEncrypt(KEY, json);
      expect(botDecrypt(KEY, enc)).toEqual({ plaintext: json, receiveid: '' });
      const padded = rawDecrypt(botAesKey(KEY), Buffer.from(enc, 'base64'));
      expect(padded.length % 32).toBe(0);
      pads.add(padded.at(-1)!);
    }
    expect([...pads].sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
  });

  it('lays the plaintext out as random16 | uint32be(len) | msg with nothing after it', () => {
    const json = '{"a":"é"}';
    const random = Buffer.from('0123456789abcdef');
    const padded = rawDecrypt(botAesKey(KEY), Buffer.from(botEncrypt(KEY, json, BOT_RECEIVE_ID, random), 'base64'));
    const pad = padded.at(-1)!;
    const plain = padded.subarray(0, padded.length - pad);
    expect(plain.subarray(0, 16)).toEqual(random);
    expect(plain.readUInt32BE(16)).toBe(Buffer.byteLength(json));
    expect(plain.subarray(20).toString('utf8')).toBe(json);
  });

  it('keeps a forged non-empty receive id visible to the decrypter', () => {
    expect(botDecrypt(KEY, botEncrypt(KEY, '{}', 'ww1234567890')).receiveid).toBe('ww1234567890');
  });

  it('botCrypto binds token and key', () => {
    const c = botCrypto(TOKEN, KEY);
    const enc = c.encrypt('{"x":1}');
    expect(c.decrypt(enc)).toEqual({ plaintext: '{"x":1}', receiveid: '' });
    expect(c.sign('1409659813', '1372623149', enc)).toBe(botSignature(TOKEN, '1409659813', '1372623149', enc));
  });

  it('rejects bad keys, bad base64, bad lengths and bad padding', () => {
    expect(() => botAesKey('short')).toThrow(/43 characters/);
    expect(() => botDecrypt(KEY, 'not base64!')).toThrow(/canonical base64/);
    expect(() => botDecrypt(KEY, Buffer.alloc(8).toString('base64'))).toThrow(/multiple of 16/);
    const key = botAesKey(KEY);
    const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
    c.setAutoPadding(false);
    const badPad = Buffer.concat([c.update(Buffer.alloc(32, 0)), c.final()]).toString('base64'); // pad value 0
    expect(() => botDecrypt(KEY, badPad)).toThrow(/pad value 0/);
  });

  it('newEncodingAesKey gives usable 43-character keys', () => {
    for (let i = 0; i < 20; i += 1) {
      const k = newEncodingAesKey();
      expect(k).toMatch(/^[A-Za-z0-9]{43}$/);
      expect(botDecrypt(k, botEncrypt(k, 'hi')).plaintext).toBe('hi');
    }
  });
});

describe('media encryption', () => {
  it('encryptMedia: AES-256-CBC with the callback key, IV = key[0..16), PKCS#7 to 32, no framing', () => {
    for (const n of [0, 1, 15, 16, 31, 32, 33, 1000]) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => i % 251));
      const enc = encryptMedia(bytes, KEY);
      expect(enc.length).toBe(n + 32 - (n % 32));
      const padded = rawDecrypt(botAesKey(KEY), enc);
      expect(padded.subarray(0, n)).toEqual(bytes);
      expect(padded.subarray(n)).toEqual(Buffer.alloc(32 - (n % 32), 32 - (n % 32)));
      expect(decryptMedia(enc, KEY)).toEqual(bytes);
      expect(decryptMedia(enc, botAesKey(KEY))).toEqual(bytes);
    }
  });

  it('encryptWithAeskey: key = base64-decode(aeskey), IV = its first 16 bytes, with or without "="', () => {
    const aeskey = newAeskey();
    expect(aeskey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const bytes = Buffer.from('%PDF-1.4 fake file');
    const enc = encryptWithAeskey(bytes, aeskey);
    expect(enc.length).toBe(32);
    expect(rawDecrypt(Buffer.from(aeskey, 'base64'), enc).subarray(0, bytes.length)).toEqual(bytes);
    expect(decryptWithAeskey(enc, aeskey)).toEqual(bytes);
    expect(decryptWithAeskey(enc, aeskey.slice(0, 43))).toEqual(bytes);
    // The same key material either way: an aeskey of EncodingAESKey + "=" encrypts like the callback key.
    expect(encryptWithAeskey(bytes, `${KEY}=`)).toEqual(encryptMedia(bytes, KEY));
    expect(() => encryptWithAeskey(bytes, 'c2hvcnQ=')).toThrow(/not 32/);
    expect(() => decryptMedia(Buffer.alloc(16), KEY)).toThrow(/multiple of 32/);
  });
});
