import type { Logger } from 'pino';
import type { IdentityStore } from '../identity/types.js';
import type { FailureStore, InboundSettlement, LogChannel, MessageLog, OutboundKind, OutboundStatus } from '../log/types.js';
import { createKeyedSerial } from './keyed-serial.js';

/** Where a message was, on which account, with whom. */
export interface MessagePlace {
  channel: LogChannel;
  /** `open_kfid` (kf), AppID (mp), `key<N>` (openai-compat) */
  account: string;
  /** `external_userid`, `openid`, the `/v1` user */
  externalId: string;
}

/** What the LLM did for one message, as the log keeps it. */
export interface LlmUse {
  agent: string;
  latencyMs: number;
  inputTokens: number | null;
  outputTokens: number | null;
}

/**
 * The pipeline's side of the message log: rows for every inbound message and every outbound one, and the list of
 * replies that ran out of attempts. Every method returns at once and never throws (identities are resolved and
 * rows written in the background): recording must never delay or stop a reply.
 */
export interface MessageRecorder {
  /** A customer message handed off for an answer: its `pending` row. */
  inbound(m: MessagePlace & { msgid: string; type: string; content: string; atMs?: number }): void;
  /** How the pipeline ended an inbound message. */
  settle(m: MessagePlace & { msgid: string }, change: InboundSettlement): void;
  /** One message sent (or refused) to the customer: a part, a welcome, a hand-off notice, a fallback. */
  outbound(
    m: MessagePlace & { partId: string; kind: OutboundKind; content: string; status: OutboundStatus; replyTo?: string | null; errcode?: number | null; agent?: string | null },
  ): void;
  /** A reply whose attempts ran out, for `/admin/failures` (kf and OA). */
  failed(
    m: MessagePlace & { channel: 'kf' | 'mp'; msgid: string; parts: string[]; sent: number; partIds: string[]; errcode: number | null; reason: string },
  ): void;
  /** Resolves when what was recorded so far has been handed to the log (tests). */
  idle(): Promise<void>;
}

/** A recorder that records nothing (tests and tools that do not care). */
export const NO_RECORDER: MessageRecorder = {
  inbound: () => undefined,
  settle: () => undefined,
  outbound: () => undefined,
  failed: () => undefined,
  idle: async () => undefined,
};

/**
 * @param o.identityAccount the identity's account for a place: kf's is the CorpID (external_userid is per corp),
 *   every other channel's is the place's account
 */
export function createRecorder(o: {
  log: MessageLog;
  failures: FailureStore;
  identities: IdentityStore;
  identityAccount: (place: MessagePlace) => string;
  logger: Logger;
}): MessageRecorder {
  const pending = new Set<Promise<void>>();
  // One chain per customer: a new customer's first resolve is an insert and takes longer than the cached ones after
  // it, and without the chain an answer's row could be written after the next message's (the log's order is its id).
  const perCustomer = createKeyedSerial();
  /**
   * Runs `work` with the place's customer id and the time of the call (epoch ms), in the background, after the
   * work queued earlier for the same customer; a failure is logged, never thrown.
   */
  const withCustomer = (place: MessagePlace, what: string, work: (customerId: string, atMs: number) => void) => {
    const atMs = Date.now();
    const account = o.identityAccount(place);
    const p = perCustomer
      .run(`${place.channel}\u0000${account}\u0000${place.externalId}`, async () => {
        let customerId = '';
        try {
          customerId = await o.identities.resolve({ channel: place.channel, account, externalId: place.externalId });
        } catch (e) {
          o.logger.warn({ err: e instanceof Error ? e.message : String(e), channel: place.channel }, 'customer id unavailable; logging the message without it');
        }
        work(customerId, atMs);
      })
      .catch((e: unknown) => o.logger.warn({ err: e instanceof Error ? e.message : String(e), what }, 'message log: could not record'))
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  const base = (place: MessagePlace) => ({ channel: place.channel, account: place.account, externalId: place.externalId });

  return {
    inbound: (m) =>
      withCustomer(m, 'inbound', (customerId, atMs) =>
        o.log.record({ ...base(m), customerId, direction: 'in', msgid: m.msgid, type: m.type, content: m.content, status: 'pending', atMs: m.atMs ?? atMs }),
      ),
    settle: (m, change) => o.log.settle({ channel: m.channel, account: m.account, msgid: m.msgid }, change),
    outbound: (m) =>
      withCustomer(m, 'outbound', (customerId, atMs) =>
        o.log.record({
          ...base(m),
          customerId,
          atMs,
          direction: 'out',
          msgid: m.partId,
          type: m.kind,
          content: m.content,
          status: m.status,
          replyTo: m.replyTo ?? null,
          errcode: m.errcode ?? null,
          agent: m.agent ?? null,
        }),
      ),
    failed: (m) =>
      withCustomer(m, 'failure', (customerId, atMs) => {
        // Not awaited in the customer's chain: a slow failures table must not hold up that customer's log rows.
        const add = o.failures
          .add({ ...base(m), channel: m.channel, customerId, atMs, msgid: m.msgid, parts: m.parts, sent: m.sent, partIds: m.partIds, errcode: m.errcode, reason: m.reason })
          .then(
            () => undefined,
            (e: unknown) => o.logger.warn({ err: e instanceof Error ? e.message : String(e), what: 'failure' }, 'message log: could not record'),
          )
          .finally(() => pending.delete(add));
        pending.add(add);
      }),
    idle: async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
