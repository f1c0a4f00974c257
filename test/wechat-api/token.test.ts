import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { WechatApiError } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics.js';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';
import { createTokenProvider, type FetchedToken } from '../../src/wechat-api/token.js';
import { createTestRedisStore, redisUrl } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A token endpoint that counts calls and answers after `delayMs`. */
function endpoint(delayMs = 30) {
  let n = 0;
  return {
    get calls() {
      return n;
    },
    fetch: async (): Promise<FetchedToken> => {
      n += 1;
      await sleep(delayMs);
      return { access_token: `AT-${n}`, expires_in: 7200 };
    },
  };
}

const provider = (store: Store, fetchToken: (o: { forceRefresh: boolean }) => Promise<FetchedToken>, secret = 's3cret') =>
  createTokenProvider({ store, log: pino({ level: 'silent' }), metrics: createMetrics(), api: 'wecom', endpoint: 'gettoken', appId: 'ww1', secret, fetchToken });

for (const kind of ['memory', 'redis'] as const) {
  describe.skipIf(kind === 'redis' && !redisUrl)(`access_token provider (${kind} store)`, () => {
    const stores: Store[] = [];
    const newStore = async () => {
      const s = kind === 'memory' ? createMemoryStore() : (await createTestRedisStore('token')).store;
      stores.push(s);
      return s;
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });

    it('single flight: 20 concurrent gets make one fetch and all get the same token', async () => {
      const ep = endpoint();
      const p = provider(await newStore(), ep.fetch);
      const tokens = await Promise.all(Array.from({ length: 20 }, () => p.get()));
      expect(new Set(tokens)).toEqual(new Set(['AT-1']));
      expect(ep.calls).toBe(1);
      expect(await p.get()).toBe('AT-1');
      expect(ep.calls).toBe(1);
    });

    it('stable_token: force_refresh only on the fetch right after a refusal, and not twice within 30 s', async () => {
      const forced: boolean[] = [];
      const p = provider(await newStore(), async ({ forceRefresh }) => {
        forced.push(forceRefresh);
        return { access_token: `ST-${forced.length}`, expires_in: 7200 };
      });
      expect(await p.get()).toBe('ST-1');
      await p.invalidate('ST-1');
      expect(await p.get()).toBe('ST-2');
      expect(await p.get()).toBe('ST-2');
      await p.invalidate('ST-2');
      expect(await p.get()).toBe('ST-3');
      expect(forced).toEqual([false, true, false]);
    });

    it('invalidate drops only the token it names; the next get fetches once', async () => {
      const store = await newStore();
      const ep = endpoint(5);
      const p = provider(store, ep.fetch);
      expect(await p.get()).toBe('AT-1');
      await p.invalidate('AT-OLD'); // a stale token from elsewhere: nothing happens
      expect(await p.get()).toBe('AT-1');
      await p.invalidate('AT-1');
      expect(await p.get()).toBe('AT-2');
      expect(ep.calls).toBe(2);
    });

    it('a token close to expiry is refreshed ahead of time', async () => {
      let n = 0;
      const p = createTokenProvider({
        store: await newStore(),
        log: pino({ level: 'silent' }),
        metrics: createMetrics(),
        api: 'wecom',
        endpoint: 'gettoken',
        appId: 'ww1',
        secret: 'x',
        refreshAheadMs: 1000,
        fetchToken: async () => ({ access_token: `T${++n}`, expires_in: 1.2 }),
      });
      expect(await p.get()).toBe('T1');
      await sleep(300);
      expect(await p.get()).toBe('T2');
    });

    it('a refusal propagates and the next get tries again', async () => {
      let fail = true;
      const p = provider(await newStore(), async () => {
        if (fail) throw new WechatApiError('gettoken', 40001, false, 'gettoken: errcode 40001');
        return { access_token: 'OK', expires_in: 7200 };
      });
      await expect(p.get()).rejects.toMatchObject({ errcode: 40001 });
      fail = false;
      expect(await p.get()).toBe('OK');
    });

  });
}

describe.skipIf(!redisUrl)('access_token provider across processes (Redis)', () => {
  const stores: Store[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it('two providers on one store (two processes): one fetch, shared token', async () => {
    const { store } = await createTestRedisStore('token2');
    stores.push(store);
    const ep = endpoint(80);
    const [a, b] = [provider(store, ep.fetch), provider(store, ep.fetch)];
    const [ta, tb] = await Promise.all([a.get(), b.get()]);
    expect([ta, tb]).toEqual(['AT-1', 'AT-1']);
    expect(ep.calls).toBe(1);
  });

  it('the store key never contains the secret', async () => {
    const { store } = await createTestRedisStore('token3');
    stores.push(store);
    const p = provider(store, endpoint(1).fetch, 'VERY-SECRET-VALUE');
    await p.get();
    const { Redis } = await import('ioredis');
    const r = new Redis(redisUrl);
    const all = await r.keys('*');
    await r.quit();
    expect(all.some((k) => k.includes('VERY-SECRET-VALUE'))).toBe(false);
    expect(all.some((k) => k.includes(':token:wecom:ww1:'))).toBe(true);
  });
});
