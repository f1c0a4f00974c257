/**
 * Every Redis key of the message log, the failures list and customer identities, built in one place (like
 * src/store/keys.ts for the pipeline's keys) so the layout is visible. The prefix is the store's (`bridge:`; tests
 * use a unique one); the names here do not collide with src/store/keys.ts.
 */

/** The data layer's Redis keys under one prefix. */
export interface DataKeys {
  /** stream of log rows (XADD MAXLEN = MESSAGE_LOG_MEMORY_LIMIT); entry id = row id; one field `r` = row JSON */
  logStream: string;
  /** hash inbound key (channel\naccount\nmsgid) → settlement JSON: how an inbound row ended (rows are immutable in a stream) */
  logState: string;
  /** sorted set inbound key → ms of its last settlement: caps logState to the newest MESSAGE_LOG_MEMORY_LIMIT */
  logStateOrder: string;
  /** counter: failure ids */
  failureSeq: string;
  /** hash of one failure: `data` (JSON of the fixed fields), `errcode`, `reason`, `sent`, `replays` */
  failure: (id: string) => string;
  /** sorted set failure id → id: newest first by score */
  failureOrder: string;
  /** hash channel\naccount\nmsgid → failure id (a second failure of the same message replaces the first) */
  failureByKey: string;
  /** hash channel\naccount\nexternalId → customer id */
  identityIndex: string;
  /** hash of one customer: `identities` (JSON array), `nickname`, `firstSeen`, `lastSeen` (epoch ms) */
  customer: (customerId: string) => string;
  /** sorted set customer id → lastSeen ms (`/admin/customers`, most recent first) */
  customerSeen: string;
}

/**
 * The key builder: all data-layer keys go through it.
 * @param prefix e.g. `bridge:`
 */
export function dataKeys(prefix: string): DataKeys {
  const k = (name: string) => `${prefix}${name}`;
  return {
    logStream: k('log:stream'),
    logState: k('log:state'),
    logStateOrder: k('log:state-order'),
    failureSeq: k('failures:seq'),
    failure: (id) => k(`failures:item:${id}`),
    failureOrder: k('failures:order'),
    failureByKey: k('failures:by-key'),
    identityIndex: k('identity:index'),
    customer: (customerId) => k(`customer:${customerId}`),
    customerSeen: k('customer:seen'),
  };
}
