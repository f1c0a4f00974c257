import { createHash, randomBytes } from 'node:crypto';
import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';
import { HttpError } from './http-error.js';

/** A signed callback POST as the replay guard sees it (all values exactly as received). */
export interface SignedRequest {
  /** `kf` or `mp` (keys of different channels never meet) */
  channel: string;
  /** CorpID (kf) or AppID (mp) */
  account: string;
  timestamp: string;
  nonce: string;
  /** every signature the request carries (`msg_signature`; OA: `signature` and, encrypted, `msg_signature`) */
  signatures: readonly string[];
  /** the raw body */
  body: string;
}

/** What the guard decided for one request. */
export interface ReplayClaim {
  /**
   * `new`: first time this (timestamp, nonce, signature) is seen: process it. `retry`: an identical request was
   * accepted before or is being handled right now (WeChat's own retry, or a replay of it): attach to that work,
   * start nothing new.
   */
  kind: 'new' | 'retry';
  /**
   * Forgets a `new` claim: the caller calls it when the request was not accepted (any non-2xx answer, e.g. 503
   * while Redis is down or an OA delivery held past WeChat's deadline), so its retry is handled as new. No-op for
   * `retry`. Never throws (a claim that cannot be forgotten expires with the window).
   */
  release(): Promise<void>;
}

export interface ReplayGuard {
  /**
   * Remembers a verified request's (timestamp, nonce, signatures) with a hash of its body for the skew window
   * (docs/configuration.md "Callback checks": every accepted signed POST). Call it after every other check has passed.
   * @returns the claim (see {@link ReplayClaim})
   * @throws HttpError 401 `replayed` when the same triple came before with another body (a seen URL carrying a
   *   forged message); the store's error when it is unreachable (the route answers 503)
   */
  claim(r: SignedRequest): Promise<ReplayClaim>;
}

/** How long a triple is remembered when CALLBACK_MAX_SKEW_S=0 turns the timestamp check off (ms). */
export const NO_SKEW_MEMORY_MS = 48 * 3600_000;

/**
 * @param maxSkewS CALLBACK_MAX_SKEW_S. A timestamp T is accepted from T−skew to T+skew, so a triple is kept for
 *   2·skew after it is first seen; 0 (no timestamp check) keeps it 48 h, long enough for any retry WeChat makes
 *   (one key of ~100 bytes per callback: mind Redis `maxmemory` on a busy account).
 */
export function createReplayGuard(store: Store, maxSkewS: number): ReplayGuard {
  const ttlMs = maxSkewS > 0 ? 2 * maxSkewS * 1000 : NO_SKEW_MEMORY_MS;
  // Claim ids only need to be unique, not unpredictable: a random prefix per guard and a counter. A randomBytes()
  // call per callback was 9 % of the ack path's CPU in a --cpu-prof run (it is a synchronous syscall, unpooled).
  const prefix = randomBytes(6).toString('base64url');
  let seq = 0;
  return {
    claim: async (r) => {
      const key = keys.callbackSeen(r.channel, r.account, digest([r.timestamp, r.nonce, ...r.signatures].join('\n')));
      const bodyHash = digest(r.body);
      // The claim id tells our own claim from an identical concurrent one, so a release never forgets another's.
      const value = `${bodyHash} ${prefix}${(seq++).toString(36)}`;
      // Three tries: a claim can vanish between our two calls when the request holding it was refused (503).
      for (let tries = 0; tries < 3; tries++) {
        if (await store.setIfAbsent(key, value, ttlMs)) {
          return { kind: 'new', release: () => store.delIfEquals(key, value).then(() => undefined, () => undefined) };
        }
        const seen = await store.get(key);
        if (seen === null) continue;
        if (seen.split(' ')[0] !== bodyHash) throw new HttpError(401, 'replayed', 'signature already used for another message');
        return { kind: 'retry', release: async () => undefined };
      }
      throw new Error('callback replay claim kept changing');
    },
  };
}

/** 128 bits of SHA-256, base64url: enough to tell bodies apart, short enough for a key per callback. */
function digest(s: string): string {
  return createHash('sha256').update(s).digest('base64url').slice(0, 22);
}
