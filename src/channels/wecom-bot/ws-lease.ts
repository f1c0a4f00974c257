import type { Logger } from 'pino';
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';

/**
 * The lease that elects, among every process sharing one Store, the single process allowed to hold a smart bot's
 * long connection. WeCom keeps one connection per bot and evicts the older one when another subscribes
 * (wecom-aibot-protocol.md §9.2), so processes that all connect just evict each other.
 *
 * Store key `bot:ws-lease:<botId>` (`keys.botWsLease`), value = the holder id of the process holding it, TTL
 * `leaseMs`. The holder renews every `leaseMs / 3`. Takeover bound after a holder dies without releasing (kill -9):
 * the key lapses at most `leaseMs` after its last renewal, and a live process notices within one acquisition
 * period, so `leaseMs + acquireEveryMs[1]` + the connect time (15 s + 3 s + well under 1 s with the defaults,
 * inside the 20 s of §9.6).
 *
 * All times are milliseconds.
 */

/** Default lease TTL. */
export const DEFAULT_LEASE_MS = 15_000;

/**
 * Default period, drawn uniformly from [min, max] on every attempt, at which a process that does not hold the lease
 * tries to acquire it. A plain timer per bot per process, not a notification: the Store interface has no
 * notifications (the memory store cannot give any), Redis keyspace notifications need server configuration that
 * managed Redis often forbids, and an expiry notification arrives only when Redis gets round to evicting the key.
 * One `SET NX` per bot per process every ~2.5 s costs nothing; the jitter keeps processes started together from
 * polling in lockstep.
 */
export const DEFAULT_ACQUIRE_EVERY_MS: readonly [min: number, max: number] = [2_000, 3_000];

/** Added to a cool-down before this process competes again. */
const REST_SLACK_MS = 25;

export interface BotWsLeaseOptions {
  store: Store;
  botId: string;
  /** this process's id, written as the key's value (unique per process, e.g. hostname:pid:random) */
  holderId: string;
  /** already a child logger naming the bot */
  log: Logger;
  /** lease TTL; default {@link DEFAULT_LEASE_MS}; renewed every third of it */
  leaseMs?: number;
  /** acquisition period bounds for a non-holder; default {@link DEFAULT_ACQUIRE_EVERY_MS} */
  acquireEveryMs?: readonly [min: number, max: number];
  /** This process now holds the lease: open the connection. Called once per tenure. */
  onAcquired(): void;
  /**
   * The lease is no longer provably ours: drop the connection at once. `taken`: a renewal found the key gone or held
   * by another process; `unconfirmed`: no renewal succeeded (store unreachable) and the last confirmed lease time ran
   * out, so another process may hold it by now. Not called for `release`, `coolDown` or `stop`.
   */
  onLost(why: 'taken' | 'unconfirmed'): void;
}

export interface BotWsLease {
  /** whether this process holds the lease now */
  readonly held: boolean;
  /**
   * Deletes the key if it holds our id (the caller has dropped the connection) and competes again after `restMs`
   * (default 0: at the next acquisition period). Other processes may take the lease at once.
   */
  release(restMs?: number): Promise<void>;
  /**
   * Stops holding and renewing, but leaves the key with our id for `restMs` more (its TTL is set to `restMs`), so
   * that no process of the cluster competes before then; afterwards anyone (this one too) competes again. Used when
   * holding the connection must pause cluster-wide: WeCom refused the credentials, or a third party evicted us.
   * Store errors are logged, not thrown (the lease then lapses by its own TTL).
   */
  coolDown(restMs: number): Promise<void>;
  /** Stops the timers and, when holding, releases the key. A key left by `coolDown` lapses by its own TTL. */
  stop(): Promise<void>;
}

/**
 * Starts competing for the lease of one bot at once (first attempt without delay).
 * Never throws; store errors are logged (warn once per failing streak) and retried on the next period.
 */
export function startBotWsLease(o: BotWsLeaseOptions): BotWsLease {
  const key = keys.botWsLease(o.botId);
  const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  const [pollMin, pollMax] = o.acquireEveryMs ?? DEFAULT_ACQUIRE_EVERY_MS;
  const renewEveryMs = Math.max(1, Math.floor(leaseMs / 3));
  // Drop slightly before the last confirmed lease could lapse in Redis (its TTL starts when Redis runs the command,
  // which is after the local time we count from, so this is on the safe side already).
  const marginMs = Math.min(1_000, Math.floor(leaseMs / 10));

  let held = false;
  let stopped = false;
  /** local time before which this process does not try to acquire */
  let restUntil = 0;
  let storeFailing = false;
  let stepTimer: NodeJS.Timeout | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  /** store operations of this lease run one after another */
  let chain: Promise<void> = Promise.resolve();

  const serial = (fn: () => Promise<void>): Promise<void> => {
    chain = chain.then(fn).catch((err: unknown) => o.log.error({ err }, 'bot ws lease: unexpected failure'));
    return chain;
  };

  const storeFailed = (op: string, err: unknown): void => {
    if (storeFailing) return;
    storeFailing = true;
    o.log.warn({ err, op }, 'bot ws lease: store call failed; retrying');
  };
  const storeAnswered = (): void => {
    if (!storeFailing) return;
    storeFailing = false;
    o.log.info('bot ws lease: store answers again');
  };

  /** The lease is ours until `sentAt + leaseMs`: arm the drop for when that runs out unconfirmed. */
  const confirm = (sentAt: number): void => {
    clearTimeout(expiryTimer);
    expiryTimer = setTimeout(() => lose('unconfirmed'), Math.max(0, sentAt + leaseMs - marginMs - Date.now()));
  };

  const lose = (why: 'taken' | 'unconfirmed'): void => {
    if (!held) return;
    held = false;
    clearTimeout(expiryTimer);
    o.log.warn({ why }, why === 'taken' ? 'bot ws lease lost to another process' : 'bot ws lease could not be renewed in time');
    o.onLost(why);
    schedule();
  };

  const acquire = async (): Promise<void> => {
    const sentAt = Date.now();
    let ok: boolean;
    try {
      ok = await o.store.acquireLock(key, o.holderId, leaseMs);
    } catch (err) {
      storeFailed('acquire', err);
      return;
    }
    storeAnswered();
    if (!ok) return;
    if (stopped) {
      await o.store.releaseLock(key, o.holderId).catch(() => undefined);
      return;
    }
    held = true;
    confirm(sentAt);
    o.log.info('bot ws lease acquired');
    o.onAcquired();
  };

  const renew = async (): Promise<void> => {
    const sentAt = Date.now();
    let ok: boolean;
    try {
      ok = await o.store.renewLock(key, o.holderId, leaseMs);
    } catch (err) {
      storeFailed('renew', err);
      return; // the expiry timer drops the connection when the confirmed lease runs out
    }
    storeAnswered();
    if (!held) {
      // Dropped as unconfirmed while this call was under way: the connection is gone, free the key for others.
      if (ok) await o.store.releaseLock(key, o.holderId).catch(() => undefined);
      return;
    }
    if (ok) confirm(sentAt);
    else lose('taken');
  };

  const step = async (): Promise<void> => {
    if (stopped) return;
    if (held) await renew();
    else if (Date.now() >= restUntil) await acquire();
  };

  function schedule(): void {
    if (stopped) return;
    clearTimeout(stepTimer);
    const now = Date.now();
    const delay = held ? renewEveryMs : now < restUntil ? restUntil - now : pollMin + Math.random() * (pollMax - pollMin);
    stepTimer = setTimeout(() => void serial(step).then(schedule), delay);
  }

  /** Marks the lease as not held (no `onLost`: the caller asked). */
  const letGo = (): void => {
    held = false;
    clearTimeout(expiryTimer);
  };

  stepTimer = setTimeout(() => void serial(step).then(schedule), 0);

  return {
    get held() {
      return held;
    },
    release: (restMs = 0) =>
      serial(async () => {
        letGo();
        try {
          await o.store.releaseLock(key, o.holderId);
        } catch (err) {
          storeFailed('release', err);
        }
        restUntil = Date.now() + restMs;
        schedule();
      }),
    coolDown: (restMs) =>
      serial(async () => {
        letGo();
        try {
          // Same owner, TTL cut (or stretched) to the rest: renewLock is the compare-and-expire the Store offers.
          await o.store.renewLock(key, o.holderId, restMs);
        } catch (err) {
          storeFailed('cool-down', err);
        }
        // Counted from after Redis ran the command, plus slack for timers firing a millisecond early against Redis's
        // millisecond expiry: the key has lapsed when this process competes (a miss would cost a whole period).
        restUntil = Date.now() + restMs + REST_SLACK_MS;
        schedule();
      }),
    stop: () => {
      stopped = true;
      clearTimeout(stepTimer);
      return serial(async () => {
        if (!held) return;
        letGo();
        try {
          await o.store.releaseLock(key, o.holderId);
        } catch (err) {
          o.log.warn({ err }, 'bot ws lease: release on stop failed; it lapses by its TTL');
        }
      });
    },
  };
}
