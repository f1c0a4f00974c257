import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The Official Account `signature` (docs/protocols.md OA §2): lowercase hex SHA-1 of `token`, `timestamp` and
 * `nonce` sorted (JS string order; the values are ASCII) and joined without a separator. It covers no body: in
 * plaintext mode it only proves the sender knows the Token. Does not throw.
 */
export function computeMpSignature(token: string, timestamp: string, nonce: string): string {
  return createHash('sha1').update([token, timestamp, nonce].sort().join(''), 'utf8').digest('hex');
}

/** {@link computeMpSignature} compared in constant time; a differently sized or upper-case value is false. */
export function verifyMpSignature(signature: string, token: string, timestamp: string, nonce: string): boolean {
  const expected = Buffer.from(computeMpSignature(token, timestamp, nonce), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
