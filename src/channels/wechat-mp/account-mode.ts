import type { Logger } from 'pino';
import type { MpReplyMode } from '../../config.js';
import type { Metrics } from '../../metrics.js';
import type { MpDelivery } from '../../pipeline/jobs.js';
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';

/** How new messages of one Official Account are answered. */
export interface AccountMode {
  /** WECHAT_MP_REPLY_MODE as configured */
  readonly configured: MpReplyMode;
  /** `WECHAT_MP_REPLY_MODE`, except that an `auto` account that answered 48001 is `passive` */
  current(): Promise<MpDelivery>;
  /** Auto mode: the account has no customer-service API (48001); answer passively from now on, in every process. */
  switchToPassive(): Promise<void>;
}

/** Read from the store at most this often per process: the flag is checked on every push. */
const CACHE_MS = 2_000;
/** The switch is kept for 30 days: an account that gets verified later is back to auto after that (or a restart of Redis). */
const SWITCH_TTL_MS = 30 * 24 * 3600_000;

/**
 * The reply mode of one account: the configured one, except that an `auto` account switched by a 48001 answers
 * passively. The switch is a store key (all processes see it within CACHE_MS) kept 30 days, and the
 * `bridge_mp_passive_only{appid}` gauge.
 */
export function createAccountMode(o: { store: Store; appId: string; mode: MpReplyMode; metrics: Metrics; log: Logger }): AccountMode {
  let cached: { passive: boolean; at: number } | null = null;
  const key = keys.mpPassiveOnly(o.appId);
  const show = (passive: boolean) => o.metrics.mpPassiveOnly.set({ appid: o.appId }, passive ? 1 : 0);
  return {
    configured: o.mode,
    current: async () => {
      if (o.mode !== 'auto') return o.mode;
      if (!cached || Date.now() - cached.at > CACHE_MS) {
        cached = { passive: (await o.store.get(key)) !== null, at: Date.now() };
        show(cached.passive);
      }
      return cached.passive ? 'passive' : 'auto';
    },
    switchToPassive: async () => {
      if (o.mode !== 'auto') return;
      const first = await o.store.setIfAbsent(key, String(Date.now()), SWITCH_TTL_MS);
      cached = { passive: true, at: Date.now() };
      show(true);
      if (first) {
        o.log.error(
          { appid: o.appId, errcode: 48001 },
          'this Official Account cannot use the customer-service API (48001): answering with passive replies from now on ' +
            '(set WECHAT_MP_REPLY_MODE=passive to make it permanent, or verify the account)',
        );
      }
    },
  };
}
