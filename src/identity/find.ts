/**
 * What the identity stores share: matching a customer against a CustomerQuery and building records.
 */
import { clampLimit } from '../log/row.js';
import type { CustomerQuery, CustomerRecord, Identity } from './types.js';

/** Whether any of the identities passes every filter of the query. */
export function identitiesMatch(identities: Identity[], q: CustomerQuery): boolean {
  return identities.some(
    (i) =>
      (q.channel === undefined || i.channel === q.channel) &&
      (q.account === undefined || i.account === q.account) &&
      (q.externalId === undefined || i.externalId === q.externalId),
  );
}

/** `CustomerQuery.limit` clamped to 1–200. */
export const clampCustomerLimit = clampLimit;

/** A record from stored fields (times in epoch ms). */
export function customerRecord(customerId: string, identities: Identity[], nickname: string | null, firstSeenMs: number, lastSeenMs: number): CustomerRecord {
  return {
    customerId,
    identities: identities.map((i) => ({ channel: i.channel, account: i.account, externalId: i.externalId })),
    nickname,
    firstSeen: new Date(firstSeenMs).toISOString(),
    lastSeen: new Date(lastSeenMs).toISOString(),
  };
}
