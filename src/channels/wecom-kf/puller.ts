import { randomBytes } from 'node:crypto';
import { errorSummary } from '../../error-summary.js';
import { WechatApiError } from '../../errors.js';
import { keys } from '../../store/keys.js';
import { pullAccount, SYNC_TOKEN_TTL_MS, type SyncDeps } from './sync.js';

/**
 * The pull lock's lifetime, renewed every third of it while a pull runs. Short, because when the process holding
 * it dies, every callback for that account waits this long before another process may pull.
 */
const PULL_LOCK_TTL_MS = 10_000;
/**
 * Least time between the starts of two pull rounds of one account in this process. WeCom sends one callback per
 * message; under a burst, a round per callback would call sync_msg hundreds of times a second (and meet 45009).
 * Waiting this long lets one round take every message that arrived meanwhile; an idle account pulls at once.
 */
export const MIN_ROUND_GAP_MS = 10;

export interface KfPuller {
  /**
   * Records durably that `account` has news (and the callback's sync Token), then starts a pull in the
   * background. This is the kf callback's hand-off: once it resolves, the callback may answer `success`.
   * @throws when the store is unreachable (the route answers 503 and WeCom retries)
   */
  request(account: string, syncToken: string | null): Promise<void>;
  /** Pulls every account that still has an unserved mark (after a crash or a failed pull). */
  sweep(): Promise<void>;
  /**
   * Pulls `account` here and resolves when this process's pull of it is over (a worker's kf-pull job). When another
   * process holds the account's lock, resolves at once: that pull sees the mark.
   */
  pullNow(account: string): Promise<void>;
  /** Stops starting pulls and waits (≤ graceMs) for running ones; their marks stay for the next process. */
  stop(graceMs: number): Promise<void>;
}

/**
 * One puller per kf account at a time across every process (docs/protocols.md kf §2.3): a store lock with an
 * owner value, acquired atomically with expiry, renewed while pulling, released by owner. Callbacks that arrive
 * during a pull only bump the account's "wanted" generation; the puller sees the bump when it tries to clear
 * the mark and goes round once more, so a message that lands after the last page is still answered.
 */
export function createKfPuller(d: SyncDeps): KfPuller {
  const owner = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const running = new Map<string, Promise<void>>();
  const lastRoundAt = new Map<string, number>();
  /** accounts kicked while their loop was running (it may be past its last check) */
  const kickedWhileRunning = new Set<string>();

  const spaceRounds = async (account: string) => {
    const wait = (lastRoundAt.get(account) ?? 0) + MIN_ROUND_GAP_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    lastRoundAt.set(account, performance.now());
  };
  const stopping = new AbortController();
  const wanted = keys.kfPullsWanted();

  const pullUnderLock = async (account: string, lockKey: string): Promise<void> => {
    const lost = new AbortController();
    const signal = AbortSignal.any([lost.signal, stopping.signal]);
    const renew = setInterval(() => {
      d.store.renewLock(lockKey, owner, PULL_LOCK_TTL_MS).then(
        (held) => held || lost.abort(),
        () => lost.abort(),
      );
    }, PULL_LOCK_TTL_MS / 3);
    try {
      for (;;) {
        await spaceRounds(account);
        const generation = await d.store.wantedGeneration(wanted, account);
        await pullAccount(d, account, signal);
        if (signal.aborted) return;
        // Cleared only if no callback bumped the mark during the pull; otherwise go round again.
        if (generation === 0 || (await d.store.clearWanted(wanted, account, generation))) return;
      }
    } finally {
      clearInterval(renew);
      await d.store.releaseLock(lockKey, owner);
    }
  };

  const loop = async (account: string) => {
    const lockKey = keys.kfPullLock(account);
    for (;;) {
      if (stopping.signal.aborted) return;
      // A lock still held under our own owner is stale (its release failed, e.g. while Redis was down): `running`
      // guarantees one loop per account here, so take it over instead of waiting out its lifetime.
      const held = (await d.store.acquireLock(lockKey, owner, PULL_LOCK_TTL_MS)) || (await d.store.renewLock(lockKey, owner, PULL_LOCK_TTL_MS));
      if (!held) return; // another process pulls; it will see our mark
      await pullUnderLock(account, lockKey);
      // A mark set between our clear and our release found the lock still held: look once more.
      if ((await d.store.wantedGeneration(wanted, account)) === 0) return;
    }
  };

  /** accounts whose last pull failed: how often in a row, and until when (performance.now() ms) sweeps skip them */
  const failures = new Map<string, { n: number; until: number }>();
  const kick = (account: string): void => {
    if (stopping.signal.aborted) return;
    if (running.has(account)) {
      kickedWhileRunning.add(account);
      return;
    }
    kickedWhileRunning.delete(account);
    const p = loop(account)
      .then(() => void failures.delete(account))
      .catch((e: unknown) => {
        if (stopping.signal.aborted) return d.log.info({ open_kfid: account }, 'kf pull cut short by shutdown; its mark stays for the next process');
        if (!(e instanceof WechatApiError && !e.retryable)) {
          return d.log.warn({ err: errorSummary(e), open_kfid: account }, 'kf pull failed; will retry on the next sweep');
        }
        // A refusal (95000 bad open_kfid, 48002 no permission …) must not hit sync_msg 5× a second from the worker's
        // sweep: sweeps skip the account, doubling from 1 s to 5 minutes; a new callback still tries at once.
        // Transient failures (Redis, -1, 5xx) keep the plain sweep retry.
        const n = (failures.get(account)?.n ?? 0) + 1;
        const retryInMs = Math.min(1000 * 2 ** (n - 1), 300_000);
        failures.set(account, { n, until: performance.now() + retryInMs });
        // A refusal needs a person (a wrong open_kfid, a missing permission, an IP not on the trusted list): error.
        d.log.error({ err: errorSummary(e), open_kfid: account, failures: n, retryInMs }, 'kf pull refused by WeCom; sweeps back off');
      })
      .then(async () => {
        running.delete(account);
        // Only recent rounds matter for spacing; an idle account's entry goes.
        if ((lastRoundAt.get(account) ?? 0) < performance.now() - MIN_ROUND_GAP_MS) lastRoundAt.delete(account);
        // A callback whose kick found this loop running (maybe past its last check, maybe failing) must not
        // wait for the sweep. Bounded: only a callback that arrives during a loop sets this.
        if (kickedWhileRunning.delete(account) && (await d.store.wantedGeneration(wanted, account).catch(() => 0)) > 0) {
          kick(account);
        }
      });
    running.set(account, p);
  };

  return {
    request: async (account, syncToken) => {
      await Promise.all([
        d.store.markWanted(wanted, account),
        syncToken ? d.store.set(keys.kfSyncToken(account), syncToken, SYNC_TOKEN_TTL_MS) : undefined,
      ]);
      if (d.pullHere !== false) kick(account);
      else await d.handOffPull?.(account);
    },
    pullNow: async (account) => {
      kick(account);
      await running.get(account);
    },
    sweep: async () => {
      if (d.pullHere === false) return;
      const now = performance.now();
      for (const account of await d.store.listWanted(wanted)) if ((failures.get(account)?.until ?? 0) <= now) kick(account);
    },
    stop: async (graceMs) => {
      stopping.abort();
      const all = Promise.allSettled([...running.values()]);
      await Promise.race([all, new Promise((r) => setTimeout(r, graceMs).unref())]);
    },
  };
}
