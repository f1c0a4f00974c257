import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';

/** What the platform's token endpoint returned. `expires_in` is in SECONDS (normally 7200). */
export interface FetchedToken {
  access_token: string;
  expires_in: number;
}

const FORCE_REFRESH_GAP_MS = 30_000;

/** A shared, self-refreshing access_token. */
export interface TokenProvider {
  /** A token valid for at least `refreshAheadMs` more. @throws WechatApiError when the platform refuses */
  get(): Promise<string>;
  /** Drops `token` (local and shared) if it is still the current one; the next `get` fetches a new one. */
  invalidate(token: string): Promise<void>;
}

export interface TokenProviderOptions {
  store: Store;
  log: Logger;
  metrics: Metrics;
  /** cache-key and log label, e.g. `wecom` */
  api: string;
  /** the token endpoint, the `api` label of `bridge_token_refreshes_total` */
  endpoint: 'gettoken' | 'stable_token';
  /** corpid / AppID: part of the cache key */
  appId: string;
  /** only hashed into the cache key, never stored or logged */
  secret: string;
  /**
   * Fetches a token from the platform. `forceRefresh` is true only for the first fetch after the platform
   * refused the current token (and at most once per 30 s): OA `stable_token` otherwise hands back the same one.
   */
  fetchToken: (opts: { forceRefresh: boolean }) => Promise<FetchedToken>;
  /** ms before expiry at which a token is no longer handed out (default 5 min) */
  refreshAheadMs?: number;
  /** ms to wait for another process that holds the refresh lock (default 5 s) */
  waitForPeerMs?: number;
}

/**
 * access_token cache shared through the store (so N processes make one `gettoken` per expiry), refreshed ahead
 * of expiry, single-flight inside the process and under a store lock across processes. Follows
 * docs/protocols.md kf §5.4. Stored value: `<expiresAtMs>:<access_token>`.
 */
export function createTokenProvider(o: TokenProviderOptions): TokenProvider {
  const refreshAheadMs = o.refreshAheadMs ?? 5 * 60_000;
  const cacheKey = keys.accessToken(o.api, o.appId, o.secret);
  const lockKey = keys.accessTokenLock(o.api, o.appId, o.secret);
  const owner = `${process.pid}:${Math.random().toString(36).slice(2)}`;
  let local: { raw: string; token: string; expiresAt: number } | null = null;
  let inflight: Promise<string> | null = null;
  let refused = false;
  let lastForcedAt = 0;

  const usable = (expiresAt: number) => expiresAt - refreshAheadMs > Date.now();

  const readShared = async () => {
    const raw = await o.store.get(cacheKey);
    const sep = raw ? raw.indexOf(':') : -1;
    if (!raw || sep < 1) return null;
    const entry = { raw, expiresAt: Number(raw.slice(0, sep)), token: raw.slice(sep + 1) };
    return usable(entry.expiresAt) ? entry : null;
  };

  const fetchAndShare = async () => {
    // stable_token allows a forced refresh 20 times a day, 30 s apart (docs/protocols.md OA §7).
    const forceRefresh = refused && Date.now() - lastForcedAt >= FORCE_REFRESH_GAP_MS;
    if (forceRefresh) lastForcedAt = Date.now();
    let fetched: FetchedToken;
    try {
      fetched = await o.fetchToken({ forceRefresh });
    } catch (e) {
      o.metrics.tokenRefreshes.inc({ api: o.endpoint, outcome: 'error' });
      throw e;
    }
    o.metrics.tokenRefreshes.inc({ api: o.endpoint, outcome: 'ok' });
    refused = false;
    const ttlMs = Math.max(1, fetched.expires_in) * 1000;
    const expiresAt = Date.now() + ttlMs;
    const raw = `${expiresAt}:${fetched.access_token}`;
    await o.store.set(cacheKey, raw, Math.max(1000, ttlMs - refreshAheadMs));
    o.log.info({ api: o.api, expiresInS: fetched.expires_in }, 'access_token refreshed');
    return { raw, token: fetched.access_token, expiresAt };
  };

  const refresh = async (): Promise<string> => {
    const deadline = Date.now() + (o.waitForPeerMs ?? 5000);
    for (;;) {
      const shared = await readShared();
      if (shared) {
        // A peer already replaced the refused token: nothing left for us to force.
        refused = false;
        return (local = shared).token;
      }
      if (await o.store.acquireLock(lockKey, owner, 15_000)) {
        try {
          // Another process may have finished a refresh between our read and our lock.
          const again = await readShared();
          return (local = again ?? (await fetchAndShare())).token;
        } finally {
          await o.store.releaseLock(lockKey, owner);
        }
      }
      if (Date.now() > deadline) return (local = await fetchAndShare()).token;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  return {
    get: async () => {
      if (local && usable(local.expiresAt)) return local.token;
      inflight ??= refresh().finally(() => {
        inflight = null;
      });
      return inflight;
    },
    invalidate: async (token) => {
      if (local?.token === token) {
        const raw = local.raw;
        local = null;
        refused = true;
        await o.store.delIfEquals(cacheKey, raw);
        return;
      }
      const shared = await o.store.get(cacheKey);
      if (shared?.endsWith(`:${token}`)) {
        refused = true;
        await o.store.delIfEquals(cacheKey, shared);
      }
    },
  };
}
