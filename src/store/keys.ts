import { createHash } from 'node:crypto';

/**
 * Every store key the bridge uses, built in one place so the layout is visible and no secret ends up in a key.
 * The store adds its prefix (e.g. `bridge:`). Components come from the platform (`open_kfid`, `external_userid`)
 * and never contain whitespace.
 */
export const keys = {
  /** sync_msg cursor of one kf account (`_all` when callbacks carry no OpenKfId) */
  kfCursor: (openKfid: string) => `kf:cursor:${openKfid}`,
  /** set while a cold start (no cursor) is paging to the end, so a cold start cut short resumes as one */
  kfColdStart: (openKfid: string) => `kf:coldstart:${openKfid}`,
  /** the newest callback Token for sync_msg (valid 10 minutes) */
  kfSyncToken: (openKfid: string) => `kf:synctoken:${openKfid}`,
  /** one puller per kf account across processes */
  kfPullLock: (openKfid: string) => `kf:pull-lock:${openKfid}`,
  /** set of kf accounts with unserved callbacks */
  kfPullsWanted: () => 'kf:pulls-wanted',
  /** cached access_token; the secret only enters as a short hash so a key never reveals it */
  accessToken: (api: string, appId: string, secret: string) => `token:${api}:${appId}:${secretTag(secret)}`,
  accessTokenLock: (api: string, appId: string, secret: string) => `token-lock:${api}:${appId}:${secretTag(secret)}`,
  /**
   * Written right AFTER a job was added to the BullMQ queue, first writer wins: whoever writes it learns that the job
   * is new (BullMQ itself silently ignores a duplicate job id)
   */
  jobHandedOff: (id: string) => `job-handed-off:${id}`,
  /** opaque conversation state (history or provider conversation id) of one customer with one agent */
  conversation: (agent: string, customer: string) => `conv:${agent}:${customer}`,
  /** held by the job planning and applying a reply for one customer, in whichever process (order across processes) */
  customerLock: (orderKey: string) => `customer-lock:${orderKey}`,
  /**
   * BullMQ mode: one customer's unfinished jobs (sorted set scored by ticket, in hand-off order). The customer is a
   * hash tag: this key and `customerOrderSeq` change in one MULTI, which a Redis Cluster allows only within a slot.
   */
  customerOrder: (orderKey: string) => `customer-order:{${orderKey}}`,
  /** BullMQ mode: the customer's ticket counter for `customerOrder` (same hash tag) */
  customerOrderSeq: (orderKey: string) => `customer-order-seq:{${orderKey}}`,
  /** messages of one customer in one clock minute (RATE_LIMIT_PER_CUSTOMER_PER_MIN) */
  rateLimit: (customer: string, minute: number) => `rate:${customer}:${minute}`,
  /** the rest of a long answer, sent when the customer asks to continue */
  pendingRest: (customer: string) => `rest:${customer}`,
  /** OA: how one message's answer leaves (a passive reply, "still thinking" given, or active), first writer wins */
  mpSlot: (jobId: string) => `mp:slot:${jobId}`,
  /** OA: when the first delivery of one MsgId arrived and the reply mode it was given (`<ms>:<mode>`) */
  mpFirstDelivery: (jobId: string) => `mp:first:${jobId}`,
  /** OA: how many deliveries of one MsgId WeChat has made */
  mpDeliveries: (jobId: string) => `mp:deliveries:${jobId}`,
  /**
   * An accepted signed callback: a hash of its (timestamp, nonce, signatures) → a hash of its body and a claim id.
   * The same triple with another body is a forgery; an identical request is a retry (http/replay-guard.ts).
   */
  callbackSeen: (channel: string, account: string, tripleHash: string) => `seen:${channel}:${account}:${tripleHash}`,
  /** OA: an event push already handled (hash of FromUserName, CreateTime, Event, EventKey); holds the reply given */
  mpEvent: (appId: string, digest: string) => `mp:event:${appId}:${digest}`,
  /** OA auto mode: set once the account answered 48001 (no customer-service API): answer passively from then on */
  mpPassiveOnly: (appId: string) => `mp:passive-only:${appId}`,
  /** kf: what the bridge last learned of a conversation's service_state (JSON `{state, source, at}`), 48 h */
  kfServiceState: (openKfid: string, user: string) => `kf:service-state:${openKfid}:${user}`,
  /**
   * kf: the reply to one inbound message must not (or no longer) be sent: the customer recalled the message, or
   * WeCom reported a part undeliverable. Keyed by the hash prefix every outbound msgid of that reply shares.
   */
  kfReplyCancelled: (replyTag: string) => `kf:reply-cancelled:${replyTag}`,
  /** smart bot: the newest snapshot of one answer stream (JSON StreamSnapshot), read by WeCom's refresh polls */
  botStream: (streamId: string) => `bot:stream:${streamId}`,
  /** smart bot, long connection: which process holds the bot's one WebSocket (a lease, renewed) */
  botWsLease: (botId: string) => `bot:ws-lease:${botId}`,
  /** OA: the customer's last reported location (LOCATION event) */
  mpLocation: (customer: string) => `mp:location:${customer}`,
};

function secretTag(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12);
}

/** Identifies a customer of one account on one channel, e.g. `kf:<open_kfid>:<external_userid>`. */
export function customerKey(channel: string, account: string, user: string): string {
  return `${channel}:${account}:${user}`;
}
