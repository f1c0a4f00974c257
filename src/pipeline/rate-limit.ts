import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';

/** What to do with one more message of a customer. */
export type RateVerdict = 'ok' | 'notify' | 'drop';

export interface RateLimiter {
  /**
   * Counts one customer message in the current clock minute (shared by every process through the store).
   * @returns `ok` within the limit, `notify` for the first message past it (the customer is told once), `drop` after
   */
  check(customer: string): Promise<RateVerdict>;
}

/**
 * RATE_LIMIT_PER_CUSTOMER_PER_MIN, enforced in the pipeline: kf callbacks carry no customer, so an HTTP limiter
 * could not tell customers apart. A fixed clock-minute window (one INCR with expiry): a burst across a minute
 * boundary may get up to twice the limit, which is fine for its purpose (one customer flooding the LLM bill).
 * @param limitPerMin 0 turns it off
 */
export function createRateLimiter(store: Store, limitPerMin: number, now: () => number = Date.now): RateLimiter {
  return {
    check: async (customer) => {
      if (limitPerMin <= 0) return 'ok';
      const minute = Math.floor(now() / 60_000);
      const n = await store.incr(keys.rateLimit(customer, minute), 120_000);
      if (n <= limitPerMin) return 'ok';
      return n === limitPerMin + 1 ? 'notify' : 'drop';
    },
  };
}
