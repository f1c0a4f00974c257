/**
 * /metrics tells the truth (docs/configuration.md "Metrics"): behind METRICS_TOKEN when set; every known series present at
 * 0 from the start; bridge_build_info; bridge_redis_up only with Redis; a token failure labelled with the token
 * endpoint (`gettoken`), never with the call that needed the token, and counted as a failed refresh.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sleep, startHarness, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';

const TOKEN = 'metrics-token-0123456789';
const scrape = async (h: Harness, auth?: string) => {
  const res = await fetch(`${h.url}/metrics`, auth ? { headers: { authorization: auth } } : {});
  return { status: res.status, text: await res.text() };
};

describe('/metrics', () => {
  let h: Harness | undefined;
  afterEach(async () => h?.close());

  it('with METRICS_TOKEN: 401 without or with a wrong Bearer token, 200 with the right one', async () => {
    h = await startHarness({ env: { METRICS_TOKEN: TOKEN } });
    expect((await scrape(h)).status).toBe(401);
    expect((await scrape(h, 'Bearer wrong')).status).toBe(401);
    expect((await scrape(h, TOKEN)).status).toBe(401);
    const ok = await scrape(h, `Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('bridge_callbacks_total');
    expect(h.logs.raw.join('\n')).not.toContain(TOKEN);
  });

  it('known series are there at 0 before any event; build info; no bridge_redis_up without Redis', async () => {
    h = await startHarness();
    const { text } = await scrape(h);
    for (const series of [
      'bridge_replies_total{channel="kf",kind="failed"} 0',
      'bridge_replies_total{channel="kf",kind="answer"} 0',
      'bridge_callbacks_total{channel="kf",outcome="unauthorized"} 0',
      'bridge_jobs_given_up_total{channel="kf"} 0',
      'bridge_token_refreshes_total{api="gettoken",outcome="error"} 0',
      'bridge_llm_breaker_open{agent="default"} 0',
      'bridge_llm_duration_seconds_count{agent="default",outcome="timeout"} 0',
    ]) {
      expect(text, series).toContain(series);
    }
    expect(text).toMatch(/bridge_build_info\{version="[^"]+",node="v\d+\.\d+\.\d+"\} 1/);
    expect(text).not.toContain('bridge_redis_up');
  });

  it.skipIf(!redisUrl)('with Redis: bridge_redis_up is 1', async () => {
    h = await startHarness({ redis: true });
    expect((await scrape(h)).text).toContain('bridge_redis_up 1');
  });

  it('a refused gettoken (60020, IP not allowed) is a failed refresh labelled gettoken, not the send that needed it', async () => {
    h = await startHarness();
    h.fake.failNext('gettoken', 60020, 1);
    await h.customerSays('wmToken', '你好');
    await h.fake.waitFor(() => h!.fake.calls.some((c) => c.api === 'gettoken'));
    await sleep(200);
    // The refused pull waits for the next sweep (main.ts) or callback: WeCom's next callback pulls again.
    await h.callback();
    await h.fake.waitFor(() => h!.fake.sent.length >= 1);
    await sleep(100);
    const { text } = await scrape(h);
    expect(text).toContain('bridge_token_refreshes_total{api="gettoken",outcome="error"} 1');
    expect(text).toContain('bridge_token_refreshes_total{api="gettoken",outcome="ok"} 1');
    expect(text).toMatch(/bridge_wechat_errors_total\{api="gettoken",errcode="60020"\} 1/);
    expect(text).not.toMatch(/bridge_wechat_errors_total\{api="kf\/[a-z_]+",errcode="60020"\}/);
  });
});
