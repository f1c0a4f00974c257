import { afterEach, describe, expect, it } from 'vitest';
import { buildKfCallback, postCallback } from '../fakes/wecom-kf.js';
import { CREDS, OPEN_KFID, sleep, startHarness, type Harness } from '../helpers/harness.js';

/** @fastify/under-pressure: a process whose event loop lags answers callbacks 503 at once (WeChat retries). */
describe('overload', () => {
  let h: Harness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it('after the event loop lagged past the limit: callbacks 503 with retry-after, /healthz still 200; then back to normal', async () => {
    h = await startHarness({ appOverrides: { maxEventLoopDelayMs: 100 } });
    const cb = () => postCallback(h!.url, '/wecom/kf/callback', buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: h!.fake.issueSyncToken() }));
    expect((await cb()).status).toBe(200);
    // A sustained lag (a CPU-bound bug, a GC storm): 150 ms blocks for longer than one 1 s sample.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const block = Date.now() + 150;
      while (Date.now() < block) {
        // busy
      }
      await new Promise((r) => setImmediate(r));
    }
    await sleep(20);
    const res = await cb();
    expect({ status: res.status, body: res.body }).toEqual({ status: 503, body: 'temporarily unavailable' });
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    const metrics = await h.deps.metrics.registry.getSingleMetricAsString('bridge_callbacks_total');
    expect(metrics).toContain('channel="kf",outcome="overloaded"} 1');
    await sleep(2200);
    expect((await cb()).status).toBe(200);
  });
});
