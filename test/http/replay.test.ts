/**
 * Replays of accepted callbacks (docs/configuration.md "Callback checks"): every accepted signed POST's (timestamp, nonce,
 * signature) is remembered with its body's hash. The same triple with another body is 401; an identical request
 * is WeChat's retry: it attaches to the work already started, adds no kf pull round and does not bring an OA
 * passive delivery's "still thinking" forward; a request answered 503 is not remembered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { buildKfCallback, postCallback } from '../fakes/wecom-kf.js';
import { buildMpPush, textMsg } from '../fakes/wechat-mp-push.js';
import { CREDS, OPEN_KFID, sleep, startHarness, type Harness } from '../helpers/harness.js';
import { MP, MP_PATH, passiveText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';

const PATH = '/wecom/kf/callback';
const syncCalls = (x: Harness) => x.fake.calls.filter((c) => c.api === 'sync_msg').length;
const outcomes = async (x: { deps: Harness['deps'] }, channel: string, outcome: string) => {
  const text = (await x.deps.metrics.registry.getSingleMetricAsString('bridge_callbacks_total')) ?? '';
  return Number(new RegExp(`channel="${channel}",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
};

describe('kf: a replayed callback', () => {
  let h: Harness | undefined;
  afterEach(async () => h?.close());

  it('identical (WeCom retry or a replay, 20× at once) → 200 `success`, counted as retry, no extra sync_msg round', async () => {
    h = await startHarness();
    const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: h.fake.issueSyncToken() });
    expect((await postCallback(h.url, PATH, cb)).status).toBe(200);
    await h.fake.waitFor(() => syncCalls(h!) === 1);
    await sleep(200);
    const replies = await Promise.all(Array.from({ length: 20 }, () => postCallback(h!.url, PATH, cb)));
    expect(replies.map((r) => `${r.status} ${r.body}`)).toEqual(Array(20).fill('200 success'));
    await sleep(300);
    expect(syncCalls(h)).toBe(1);
    expect(await outcomes(h, 'kf', 'retry')).toBe(20);
    // A new callback (another nonce) still pulls at once.
    await h.callback();
    await h.fake.waitFor(() => syncCalls(h!) === 2);
  });

  it('the same signature, timestamp and nonce with another body → 401 `replayed`, nothing pulled', async () => {
    h = await startHarness();
    const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: h.fake.issueSyncToken() });
    expect((await postCallback(h.url, PATH, cb)).status).toBe(200);
    await h.fake.waitFor(() => syncCalls(h!) === 1);
    // The Encrypt (and so msg_signature) is the same; the envelope around it differs.
    const other = { query: cb.query, body: cb.body.replace('<AgentID>', '<AgentID>1') };
    const res = await postCallback(h.url, PATH, other);
    expect({ status: res.status, body: res.body }).toEqual({ status: 401, body: 'signature already used for another message' });
    await sleep(200);
    expect(syncCalls(h)).toBe(1);
  });

  it('a callback answered 503 is not remembered: its identical retry is handled as new and pulls', async () => {
    let fail = true;
    const probe = await startHarness();
    const real = probe.deps.app.kf!;
    h = probe;
    await probe.app.close();
    const { buildApp } = await import('../../src/app.js');
    const app = buildApp({
      ...probe.deps.app,
      kf: {
        ...real,
        puller: {
          ...real.puller,
          request: async (account, token) => {
            if (fail) throw new Error('store down (simulated)');
            return real.puller.request(account, token);
          },
        },
      },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    try {
      const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: probe.fake.issueSyncToken() });
      expect((await postCallback(url, PATH, cb)).status).toBe(503);
      fail = false;
      expect((await postCallback(url, PATH, cb)).body).toBe('success');
      await probe.fake.waitFor(() => syncCalls(probe) === 1);
    } finally {
      await app.close();
    }
  });
});

describe('OA passive mode: a replayed delivery', () => {
  let m: MpHarness | undefined;
  let llm: FakeOpenAI | undefined;
  afterEach(async () => {
    await m?.close();
    await llm?.close();
  });

  it('identical copies of a held delivery do not count as deliveries 2 and 3 ("still thinking" is not brought forward)', async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-replay' });
    m = await startMpHarness({
      env: {
        WECHAT_MP_REPLY_MODE: 'passive',
        WECHAT_MP_APP_SECRET: '',
        WECHAT_MP_PASSIVE_HOLD_MS: '800',
        WECHAT_MP_PASSIVE_LAST_MS: '450',
        LLM_PROVIDER: 'openai',
        OPENAI_BASE_URL: llm.baseUrl,
        OPENAI_API_KEY: 'sk-replay',
      },
    });
    llm.setDefault({ kind: 'answer', firstByteDelayMs: 1500 });
    const fields = textMsg(MP, 'oReplay', '慢问题');
    const push = buildMpPush(MP, 'safe', fields);
    const post = (p: { query: string; body: string }) =>
      fetch(`${m!.url}${MP_PATH}?${p.query}`, { method: 'POST', body: p.body }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const first = post(push);
    await sleep(50);
    // Before the fix these two were counted as deliveries 2 and 3: the third gave up after 450 ms with REPLY_STILL_THINKING.
    const copies = await Promise.all([post(push), post(push)]);
    const held = { status: 503, body: 'answer not ready' };
    expect([await first, ...copies]).toEqual([held, held, held]);
    // WeChat's real retry (signed afresh: another nonce) gets the answer once it is ready.
    await llm.waitForRequests(1);
    await sleep(1200);
    const res = await post(buildMpPush(MP, 'safe', fields));
    expect(res.status).toBe(200);
    expect(passiveText(res.body, 'safe')).toBe('AI:慢问题');
    expect(llm.requests).toHaveLength(1);
  });
});
