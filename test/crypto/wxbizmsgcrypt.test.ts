import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pkcs7Pad, pkcs7Unpad } from '../../src/crypto/pkcs7.js';
import {
  buildEncryptedJsonReply,
  buildEncryptedXmlReply,
  computeSignature,
  decrypt,
  decryptAndCheck,
  encrypt,
  parseEncodingAesKey,
  verifySignature,
} from '../../src/crypto/wxbizmsgcrypt.js';
import { CryptoError } from '../../src/errors.js';

interface Vector {
  id: string;
  kind: string;
  format: string;
  token: string;
  encoding_aes_key: string;
  receiveid: string;
  timestamp?: string;
  nonce?: string;
  msg_signature?: string;
  encrypt: string;
  random?: string;
  raw_query?: string;
  raw_body?: string;
  expected_plaintext: string;
  padding_bytes: number;
}
interface NegativeCase {
  of: string;
  change: { msg_signature?: string; receiveid?: string };
  expect: string;
}
interface VectorFile {
  vectors: Vector[];
  negative_cases: NegativeCase[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/wxbizmsgcrypt-vectors.json', import.meta.url), 'utf8'),
) as VectorFile;
const vectors = fixture.vectors;

function vectorById(id: string): Vector {
  const v = vectors.find((x) => x.id === id);
  if (!v) throw new Error(`no vector ${id}`);
  return v;
}

/** Runs `fn` and returns the CryptoError code it throws; fails the test on success or on another error type. */
function cryptoCode(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CryptoError);
    return (err as CryptoError).code;
  }
  throw new Error('expected a CryptoError, nothing was thrown');
}

/** Query-string decoding without URLSearchParams: only %XX is decoded, so a literal `+` stays a `+`. */
function parseQuery(raw: string): Map<string, string> {
  const decode = (s: string): string => {
    const bytes: number[] = [];
    for (let i = 0; i < s.length; i++) {
      const hex = s.slice(i + 1, i + 3);
      if (s[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(s[i] ?? '', 'utf8'));
      }
    }
    return Buffer.from(bytes).toString('utf8');
  };
  const out = new Map<string, string>();
  for (const pair of raw.split('&')) {
    const eq = pair.indexOf('=');
    out.set(decode(eq < 0 ? pair : pair.slice(0, eq)), eq < 0 ? '' : decode(pair.slice(eq + 1)));
  }
  return out;
}

/** Raw AES-CBC decrypt with padding left on, to look at the pad bytes the sender actually wrote. */
function rawDecrypt(key: Buffer, b64: string): Buffer {
  const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  d.setAutoPadding(false);
  return Buffer.concat([d.update(Buffer.from(b64, 'base64')), d.final()]);
}

/** Raw AES-CBC encrypt of already padded bytes, to build malformed plaintexts the module would never produce. */
function rawEncrypt(key: Buffer, plain: Buffer): string {
  const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(plain), c.final()]).toString('base64');
}

describe('fixture', () => {
  it('holds the 11 vectors and 2 negative cases the protocol doc promises', () => {
    expect(vectors).toHaveLength(11);
    expect(fixture.negative_cases).toHaveLength(2);
    expect(vectors.filter((v) => v.random !== undefined).map((v) => v.id)).toEqual([
      'wxjava-encrypt-1',
      'wxjava-encrypt-2',
    ]);
  });
});

describe.each(vectors.map((v) => [v.id, v] as const))('vector %s', (_id, v) => {
  const key = parseEncodingAesKey(v.encoding_aes_key);

  const { msg_signature: sig, timestamp, nonce } = v;
  if (sig !== undefined && timestamp !== undefined && nonce !== undefined) {
    it('signature matches and verifies', () => {
      expect(computeSignature(v.token, timestamp, nonce, v.encrypt)).toBe(sig);
      expect(verifySignature(sig, v.token, timestamp, nonce, v.encrypt)).toBe(true);
    });
  }

  it('decrypts to the exact plaintext and receiveid', () => {
    expect(decrypt(key, v.encrypt)).toEqual({ message: v.expected_plaintext, receiveid: v.receiveid });
    expect(decryptAndCheck(key, v.encrypt, v.receiveid)).toBe(v.expected_plaintext);
  });

  it(`was padded with ${v.padding_bytes} bytes of value ${v.padding_bytes}`, () => {
    const padded = rawDecrypt(key, v.encrypt);
    expect(padded.length % 32).toBe(0);
    expect([...padded.subarray(padded.length - v.padding_bytes)]).toEqual(Array(v.padding_bytes).fill(v.padding_bytes));
  });

  const { random } = v;
  if (random !== undefined) {
    it('re-encrypts byte for byte with the fixed random prefix', () => {
      // The fixture stores the prefix as its 16 ASCII characters, as the WxJava test passes it.
      const prefix = Buffer.from(random, 'utf8');
      expect(prefix.length).toBe(16);
      expect(encrypt(key, v.expected_plaintext, v.receiveid, prefix)).toBe(v.encrypt);
    });
  }

  it('round-trips through encrypt with a fresh random prefix', () => {
    const c1 = encrypt(key, v.expected_plaintext, v.receiveid);
    const c2 = encrypt(key, v.expected_plaintext, v.receiveid);
    expect(c1).not.toBe(c2);
    expect(decrypt(key, c1)).toEqual({ message: v.expected_plaintext, receiveid: v.receiveid });
  });

  const { raw_query: rawQuery, raw_body: body } = v;
  if (rawQuery !== undefined) {
    it('raw query carries the signature and echostr, with + and / intact', () => {
      const q = parseQuery(rawQuery);
      expect(q.get('echostr')).toBe(v.encrypt);
      expect(q.get('msg_signature')).toBe(v.msg_signature);
      expect(q.get('timestamp')).toBe(v.timestamp);
      expect(q.get('nonce')).toBe(v.nonce);
    });
  }

  if (body !== undefined) {
    it('raw body carries the ciphertext', () => {
      expect(body).toContain(v.encrypt);
      if (v.format === 'xml') {
        expect(body).toContain(`<Encrypt><![CDATA[${v.encrypt}]]></Encrypt>`);
      } else {
        const parsed = JSON.parse(body) as Record<string, unknown>;
        const keyName = Object.keys(parsed).find((k) => k.toLowerCase() === 'encrypt');
        expect(keyName).toBeDefined();
        expect(parsed[keyName ?? '']).toBe(v.encrypt);
      }
    });
  }
});

describe('negative cases from the fixture', () => {
  it.each(fixture.negative_cases.map((n) => [Object.keys(n.change).join(','), n] as const))('%s', (_k, n) => {
    const v = vectorById(n.of);
    const key = parseEncodingAesKey(v.encoding_aes_key);
    if (n.change.msg_signature !== undefined) {
      const { token, timestamp = '', nonce = '' } = v;
      expect(verifySignature(n.change.msg_signature, token, timestamp, nonce, v.encrypt)).toBe(false);
    } else if (n.change.receiveid !== undefined) {
      const wrong = n.change.receiveid;
      expect(cryptoCode(() => decryptAndCheck(key, v.encrypt, wrong))).toBe(-40005);
    } else {
      throw new Error(`unhandled negative case ${JSON.stringify(n.change)}`);
    }
  });
});

describe('32-byte PKCS#7 block', () => {
  const v = vectorById('wecom-xml-post');
  const key = parseEncodingAesKey(v.encoding_aes_key);

  it('decodes a pad value of 30 that Node auto-padding (16-byte block) rejects', () => {
    expect(v.padding_bytes).toBe(30);
    expect(decryptAndCheck(key, v.encrypt, v.receiveid)).toBe(v.expected_plaintext);
    const strict = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
    expect(() => Buffer.concat([strict.update(Buffer.from(v.encrypt, 'base64')), strict.final()])).toThrow();
  });

  it('rejects a flipped byte in the last ciphertext block', () => {
    const bytes = Buffer.from(v.encrypt, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01;
    expect(cryptoCode(() => decrypt(key, bytes.toString('base64')))).toBe(-40008);
  });

  // CBC malleability: XOR on the previous ciphertext block lands on the same plaintext byte, so the pad value
  // can be steered exactly to 0, 33, and 29 (a valid range but the other pad bytes still read 30).
  it.each([
    ['0', 30 ^ 0],
    ['33', 30 ^ 33],
    ['29 over bytes of 30', 30 ^ 29],
  ])('rejects a pad value of %s', (_name, mask) => {
    const bytes = Buffer.from(v.encrypt, 'base64');
    const i = bytes.length - 16 - 1;
    bytes[i] = (bytes[i] ?? 0) ^ mask;
    expect(cryptoCode(() => decrypt(key, bytes.toString('base64')))).toBe(-40008);
  });
});

describe('decrypt rejects malformed input', () => {
  const key = parseEncodingAesKey('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG');

  it.each(['abc', 'ab!d', 'ab=c', 'a===', 'AAAA AAA=', 'AAAA\nAAAA', 'ab-_', '====', 'AAAAA==='])(
    'invalid base64 %j -> -40010',
    (s) => {
      expect(cryptoCode(() => decrypt(key, s))).toBe(-40010);
    },
  );

  it.each([
    ['empty', 0],
    ['17 bytes', 17],
    ['8 bytes', 8],
  ])('ciphertext of %s -> -40007', (_n, len) => {
    expect(cryptoCode(() => decrypt(key, Buffer.alloc(len, 7).toString('base64')))).toBe(-40007);
  });

  it('48 bytes (a multiple of 16 but not of 32) -> -40008', () => {
    const plain = Buffer.alloc(48, 16);
    expect(cryptoCode(() => decrypt(key, rawEncrypt(key, plain)))).toBe(-40008);
  });

  it('a plaintext shorter than the 20-byte header -> -40008', () => {
    expect(cryptoCode(() => decrypt(key, rawEncrypt(key, pkcs7Pad(Buffer.alloc(19, 0x41)))))).toBe(-40008);
  });

  it.each([21, 0xffffffff])('a length prefix of %d past the buffer -> -40008', (len) => {
    const header = Buffer.alloc(20, 0x61);
    header.writeUInt32BE(len, 16);
    const plain = Buffer.concat([header, Buffer.from('hello', 'utf8'), Buffer.from('wxid', 'utf8')]);
    expect(plain.length - 20).toBe(9);
    expect(cryptoCode(() => decrypt(key, rawEncrypt(key, pkcs7Pad(plain))))).toBe(-40008);
  });

  it('a length prefix that exactly fits leaves an empty receiveid', () => {
    const header = Buffer.alloc(20, 0x61);
    header.writeUInt32BE(9, 16);
    const plain = Buffer.concat([header, Buffer.from('hello', 'utf8'), Buffer.from('wxid', 'utf8')]);
    expect(decrypt(key, rawEncrypt(key, pkcs7Pad(plain)))).toEqual({ message: 'hellowxid', receiveid: '' });
  });

  it('a key that is not 32 bytes -> -40004', () => {
    expect(cryptoCode(() => decrypt(Buffer.alloc(16), 'AAAA'))).toBe(-40004);
    expect(cryptoCode(() => encrypt(Buffer.alloc(31), 'x', 'y'))).toBe(-40004);
  });
});

describe('parseEncodingAesKey', () => {
  const good = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';

  it('decodes the 43-character key to the 32 AES key bytes', () => {
    const key = parseEncodingAesKey(good);
    expect(key.length).toBe(32);
    expect(key.toString('hex')).toBe('8d69989bbaabe67328014c194631ad0719b3dca035b64023df292447aab60760');
  });

  it.each([
    ['42 chars', good.slice(0, 42)],
    ['44 chars', `${good}A`],
    ['with +', `${good.slice(0, 42)}+`],
    ['with /', `/${good.slice(1)}`],
    ['with =', `${good.slice(0, 42)}=`],
    ['with a space', ` ${good.slice(1)}`],
    ['non-ASCII', `${good.slice(0, 42)}é`],
    ['empty', ''],
  ])('rejects %s with -40004 and keeps the key out of the message', (_n, bad) => {
    try {
      parseEncodingAesKey(bad);
      expect.unreachable('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(CryptoError);
      expect((err as CryptoError).code).toBe(-40004);
      if (bad.length > 0) expect((err as CryptoError).message).not.toContain(bad);
    }
  });
});

describe('computeSignature / verifySignature', () => {
  it('sorts the four strings before hashing: sha1("abcd")', () => {
    expect(computeSignature('d', 'b', 'c', 'a')).toBe('81fe8bfe87576c3ecb22426f8e57847382917acf');
    expect(computeSignature('a', 'b', 'c', 'd')).toBe('81fe8bfe87576c3ecb22426f8e57847382917acf');
  });

  it('sorts by UTF-16 code unit (U+1F600 before U+FFFF), like a plain JS sort', () => {
    expect(computeSignature('\uffff', 'a', '\u{1F600}', 'B')).toBe('49beed963849783376386f342deeedea9e77b4b4');
  });

  const v = vectorById('wecom-xml-post');
  const args = [v.token, v.timestamp ?? '', v.nonce ?? '', v.encrypt] as const;

  it.each([
    ['a shorter signature', (v.msg_signature ?? '').slice(0, 39)],
    ['a longer signature', `${v.msg_signature ?? ''}0`],
    ['an empty signature', ''],
    ['a multi-byte signature of 40 characters', '\u00e9'.repeat(40)],
  ])('returns false for %s without throwing', (_n, sig) => {
    expect(() => verifySignature(sig, ...args)).not.toThrow();
    expect(verifySignature(sig, ...args)).toBe(false);
  });

  it('is exact: upper-case hex or one changed digit is false', () => {
    const sig = v.msg_signature ?? '';
    expect(verifySignature(sig, ...args)).toBe(true);
    expect(verifySignature(sig.toUpperCase(), ...args)).toBe(false);
    expect(verifySignature(`${sig.slice(0, 39)}${sig.endsWith('0') ? '1' : '0'}`, ...args)).toBe(false);
    expect(verifySignature(sig, v.token, v.timestamp ?? '', v.nonce ?? '', `${v.encrypt.slice(0, -4)}AAA=`)).toBe(false);
  });
});

describe('encrypt', () => {
  const key = parseEncodingAesKey('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG');

  it('lays out random ‖ uint32_be(byte length) ‖ msg ‖ receiveid and pads to 32', () => {
    const random = Buffer.from('0123456789abcdef', 'utf8');
    const c = encrypt(key, '中文', 'wx', random);
    const padded = rawDecrypt(key, c);
    expect(padded.length).toBe(32);
    expect(padded.subarray(0, 16).toString('utf8')).toBe('0123456789abcdef');
    expect(padded.readUInt32BE(16)).toBe(6);
    expect(padded.subarray(20, 28).toString('utf8')).toBe('中文wx');
    expect([...padded.subarray(28)]).toEqual([4, 4, 4, 4]);
  });

  it('adds a whole 32-byte block when the plaintext is already aligned', () => {
    const c = encrypt(key, 'x'.repeat(10), 'y'.repeat(2), Buffer.alloc(16));
    const padded = rawDecrypt(key, c);
    expect(padded.length).toBe(64);
    expect([...padded.subarray(32)]).toEqual(Array(32).fill(32));
  });

  it.each([0, 15, 17])('rejects a random prefix of %d bytes with -40006', (n) => {
    expect(cryptoCode(() => encrypt(key, 'hi', 'wx', Buffer.alloc(n)))).toBe(-40006);
  });

  it('encrypts an empty message and an empty receiveid (smart bots)', () => {
    const c = encrypt(key, '', '');
    expect(Buffer.from(c, 'base64').length).toBe(32);
    expect(decryptAndCheck(key, c, '')).toBe('');
    expect(cryptoCode(() => decryptAndCheck(key, encrypt(key, 'm', 'corp'), ''))).toBe(-40005);
  });
});

describe('pkcs7', () => {
  it('pads 1..32 bytes and unpads back', () => {
    expect([...pkcs7Pad(Buffer.alloc(31))].slice(31)).toEqual([1]);
    expect(pkcs7Pad(Buffer.alloc(0))).toEqual(Buffer.alloc(32, 32));
    expect(pkcs7Pad(Buffer.from([9]), 16)).toEqual(Buffer.from([9, ...Array(15).fill(15)]));
    expect(pkcs7Unpad(Buffer.concat([Buffer.from('abc'), Buffer.alloc(29, 29)]))).toEqual(Buffer.from('abc'));
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['not a multiple of 32', Buffer.alloc(31, 1)],
    ['pad 0', Buffer.alloc(32, 0)],
    ['pad 33', Buffer.alloc(32, 33)],
    ['a middle pad byte that differs', Buffer.concat([Buffer.alloc(28), Buffer.from([4, 4, 3, 4])])],
    ['the first pad byte differs', Buffer.concat([Buffer.alloc(28), Buffer.from([5, 4, 4, 4])])],
    ['32 pad bytes with one off', Buffer.concat([Buffer.from([31]), Buffer.alloc(31, 32)])],
  ])('rejects %s with -40008', (_n, buf) => {
    expect(cryptoCode(() => pkcs7Unpad(buf))).toBe(-40008);
  });

  it('rejects a block size outside 1..255', () => {
    expect(() => pkcs7Pad(Buffer.alloc(1), 0)).toThrow(RangeError);
    expect(() => pkcs7Unpad(Buffer.alloc(256, 1), 256)).toThrow(RangeError);
  });
});

describe('passive reply envelopes', () => {
  const v = vectorById('wecom-xml-post');
  const parts = {
    encrypt: v.encrypt,
    signature: v.msg_signature ?? '',
    timestamp: v.timestamp ?? '',
    nonce: v.nonce ?? '',
  };

  it('builds the XML envelope of the reference SDK', () => {
    expect(buildEncryptedXmlReply(parts)).toBe(
      `<xml><Encrypt><![CDATA[${v.encrypt}]]></Encrypt>` +
        '<MsgSignature><![CDATA[477715d11cdb4164915debcba66cb864d751f3e6]]></MsgSignature>' +
        '<TimeStamp>1409659813</TimeStamp><Nonce><![CDATA[1372623149]]></Nonce></xml>',
    );
  });

  it('builds the JSON envelope with the timestamp as a string, as Tencent\'s JSON samples do', () => {
    const json = buildEncryptedJsonReply(parts);
    expect(json).toBe(
      `{"encrypt":"${v.encrypt}","msgsignature":"477715d11cdb4164915debcba66cb864d751f3e6",` +
        '"timestamp":"1409659813","nonce":"1372623149"}',
    );
    expect(Object.keys(JSON.parse(json) as object)).toEqual(['encrypt', 'msgsignature', 'timestamp', 'nonce']);
  });

  it('writes the timestamp as a number when asked (the smart bot reply table)', () => {
    expect(JSON.parse(buildEncryptedJsonReply(parts, { numericTimestamp: true }))).toMatchObject({ timestamp: 1409659813 });
  });

  it('produces a reply that verifies and decrypts end to end', () => {
    const key = parseEncodingAesKey(v.encoding_aes_key);
    const c = encrypt(key, '<xml><Content><![CDATA[hi]]></Content></xml>', v.receiveid);
    const sig = computeSignature(v.token, '1700000000', 'abc123', c);
    const xml = buildEncryptedXmlReply({ encrypt: c, signature: sig, timestamp: '1700000000', nonce: 'abc123' });
    const inner = /<Encrypt><!\[CDATA\[([^\]]*)\]\]><\/Encrypt>/.exec(xml)?.[1] ?? '';
    expect(inner).toBe(c);
    expect(verifySignature(sig, v.token, '1700000000', 'abc123', inner)).toBe(true);
    expect(decryptAndCheck(key, inner, v.receiveid)).toBe('<xml><Content><![CDATA[hi]]></Content></xml>');
  });

  it.each([
    ['encrypt with ]]>', { encrypt: 'AAAA]]>' }],
    ['encrypt not base64', { encrypt: 'AAA' }],
    ['empty encrypt', { encrypt: '' }],
    ['upper-case signature', { signature: parts.signature.toUpperCase() }],
    ['short signature', { signature: parts.signature.slice(1) }],
    ['timestamp with letters', { timestamp: '1409659813a' }],
    ['timestamp with ]]>', { timestamp: ']]><x/>' }],
    ['nonce with ]]>', { nonce: ']]><Evil/><![CDATA[' }],
    ['empty nonce', { nonce: '' }],
  ])('rejects %s with -40011 in both formats', (_n, change) => {
    const bad = { ...parts, ...change };
    expect(cryptoCode(() => buildEncryptedXmlReply(bad))).toBe(-40011);
    expect(cryptoCode(() => buildEncryptedJsonReply(bad))).toBe(-40011);
  });
});

describe('properties', () => {
  const key = parseEncodingAesKey('jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C');

  it('encrypt/decrypt round-trips any unicode message and receiveid; ciphertext is 32-byte aligned', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.string({ unit: 'binary', maxLength: 40 }),
        (message, receiveid) => {
          const c = encrypt(key, message, receiveid);
          const bytes = Buffer.from(c, 'base64');
          const plainLen = 20 + Buffer.byteLength(message, 'utf8') + Buffer.byteLength(receiveid, 'utf8');
          expect(bytes.length % 32).toBe(0);
          expect(bytes.length).toBe((Math.floor(plainLen / 32) + 1) * 32);
          expect(decrypt(key, c)).toEqual({ message, receiveid });
          expect(decryptAndCheck(key, c, receiveid)).toBe(message);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('pkcs7Unpad(pkcs7Pad(x)) === x for any bytes and block size', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 255 }), (arr, bs) => {
        const buf = Buffer.from(arr);
        const padded = pkcs7Pad(buf, bs);
        expect(padded.length % bs).toBe(0);
        expect(padded.length - buf.length).toBeGreaterThanOrEqual(1);
        expect(padded.length - buf.length).toBeLessThanOrEqual(bs);
        expect(pkcs7Unpad(padded, bs).equals(buf)).toBe(true);
      }),
    );
  });
});
