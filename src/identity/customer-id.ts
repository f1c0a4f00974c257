/**
 * Customer ids: `cus_` + 20 base32 characters (RFC 4648 alphabet, lower case): 100 random bits, so ids made by
 * several processes at once never collide in practice and reveal nothing about the person or the order of contact.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A new random customer id, e.g. `cus_k3v9q2…` (24 characters). */
export function newCustomerId(): string {
  // 256 is a multiple of 32, so `byte & 31` picks every character with the same probability.
  const bytes = randomBytes(20);
  let s = 'cus_';
  for (const b of bytes) s += ALPHABET[b & 31];
  return s;
}

/** Whether a string has the shape of a customer id. */
export function isCustomerId(s: string): boolean {
  return /^cus_[a-z2-7]{20}$/.test(s);
}

/** One string per identity (channel, account, external id), for maps, caches and Redis hash fields. */
export function identityKeyOf(i: { channel: string; account: string; externalId: string }): string {
  return `${i.channel}\n${i.account}\n${i.externalId}`;
}
