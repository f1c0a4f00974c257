/**
 * PKCS#7 padding over a configurable block size. WXBizMsgCrypt pads to **32** bytes, not the AES block size of
 * 16, which is why Node's built-in auto padding cannot be used (see docs/protocols.md kf §1.1).
 */
import { CryptoError } from '../errors.js';

function assertBlockSize(blockSize: number): void {
  // A pad value has to fit in one byte, and 0 would make every buffer "already padded".
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 255) {
    throw new RangeError(`PKCS#7 block size must be an integer in 1..255, got ${blockSize}`);
  }
}

/**
 * Appends PKCS#7 padding so the result is a multiple of `blockSize` bytes (default 32, the WXBizMsgCrypt block).
 * Always adds 1..blockSize bytes, each equal to the pad length; an already aligned input gets a whole extra block,
 * so unpadding is never ambiguous. Returns a new buffer; throws RangeError for a block size outside 1..255.
 */
export function pkcs7Pad(buf: Buffer, blockSize = 32): Buffer {
  assertBlockSize(blockSize);
  const pad = blockSize - (buf.length % blockSize);
  return Buffer.concat([buf, Buffer.alloc(pad, pad)]);
}

/**
 * Removes PKCS#7 padding added by {@link pkcs7Pad} (default block 32 bytes). Returns a view into `buf` without the
 * pad bytes. Throws CryptoError(-40008) when `buf` is empty or not a multiple of `blockSize`, when the pad value is
 * outside 1..blockSize, or when any pad byte differs from the pad value. Throws RangeError for a bad block size.
 */
export function pkcs7Unpad(buf: Buffer, blockSize = 32): Buffer {
  assertBlockSize(blockSize);
  if (buf.length === 0 || buf.length % blockSize !== 0) {
    throw new CryptoError(-40008, `padded buffer length ${buf.length} is not a positive multiple of ${blockSize}`);
  }
  const pad = buf[buf.length - 1] ?? 0;
  if (pad < 1 || pad > blockSize) {
    throw new CryptoError(-40008, `invalid PKCS#7 pad value ${pad}`);
  }
  // Check every byte before deciding, so the loop's duration does not depend on where a bad byte sits.
  let bad = 0;
  for (let i = buf.length - pad; i < buf.length; i++) bad |= (buf[i] ?? 0) ^ pad;
  if (bad !== 0) throw new CryptoError(-40008, 'PKCS#7 pad bytes do not match the pad value');
  return buf.subarray(0, buf.length - pad);
}
