/**
 * Customer identity: one internal id (`cus_…`) per person per identity, created on first contact. An identity is
 * how a platform names a person on an account: kf `external_userid` per corp (account = CorpID, because
 * external_userid is per corp, not per kf account), OA `openid` per AppID, a smart-bot user per corp, a `/v1`
 * caller's `user` per API key. Nothing links a kf user to an OA follower yet: one identity is one customer.
 */
import type { LogChannel } from '../log/types.js';

/** How a platform names one person on one account. */
export interface Identity {
  channel: LogChannel;
  /** CorpID (kf, bot), AppID (mp), `key<N>` (openai-compat) */
  account: string;
  externalId: string;
}

/** A customer as `/admin/customers` shows it. */
export interface CustomerRecord {
  customerId: string;
  identities: Identity[];
  nickname: string | null;
  /** ISO-8601 UTC */
  firstSeen: string;
  /** ISO-8601 UTC */
  lastSeen: string;
}

/** Filters of `/admin/customers`; all optional, combined with AND. */
export interface CustomerQuery {
  channel?: LogChannel;
  account?: string;
  externalId?: string;
  /** at most this many (1–200) */
  limit: number;
}

export interface IdentityStore {
  readonly kind: 'memory' | 'redis' | 'mysql';
  /**
   * The customer id of an identity, created on first contact (`cus_` + 20 base32 characters); records `lastSeen`.
   * Cached in this process, so a busy customer costs the store nothing per message.
   * @throws when the store cannot answer (the caller logs the message with an unknown customer id instead)
   */
  resolve(identity: Identity): Promise<string>;
  /** @returns null for an unknown (or erased) id */
  get(customerId: string): Promise<CustomerRecord | null>;
  find(q: CustomerQuery): Promise<CustomerRecord[]>;
  /** The identity behind a customer id, for a channel (`reply`, `reset`); null when unknown. */
  identityOf(customerId: string): Promise<Identity | null>;
  setNickname(customerId: string, nickname: string): Promise<void>;
  /** Deletes the customer and its identities; the identity's next message creates a new customer. @returns whether it existed */
  erase(customerId: string): Promise<boolean>;
  close(): Promise<void>;
}
