/**
 * The webhook agent answering kf customers through the real server (docs/configuration.md "Webhook agent"): the
 * request carries the operator's customer id and where the message came from, `state` comes back with the next
 * message and is cleared by a reset keyword, the Bearer token is sent, and a failing endpoint gives REPLY_ON_ERROR.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeWebhook, type FakeWebhook } from '../fakes/webhook.js';
import { OPEN_KFID, startHarness, textsTo, type Harness } from '../helpers/harness.js';

describe('webhook agent (LLM_PROVIDER=webhook)', () => {
  let h: Harness | undefined;
  let hook: FakeWebhook | undefined;
  afterEach(async () => {
    await h?.close();
    await hook?.close();
    h = hook = undefined;
  });

  it('answers kf customers, with their customer id, state round trip, reset and the Bearer token', async () => {
    hook = await startFakeWebhook({ token: 'hook-token-123' });
    h = await startHarness({ env: { LLM_PROVIDER: 'webhook', WEBHOOK_URL: hook.url, WEBHOOK_TOKEN: 'hook-token-123' } });
    await h.customerSays('wmHook', '第一条');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmHook').length === 1);
    expect(textsTo(h.fake, 'wmHook')).toEqual(['Webhook:第一条']);
    const first = hook.requests[0]!;
    expect(first.headers.authorization).toBe('Bearer hook-token-123');
    expect(first.body).toMatchObject({
      customer: { channel: 'kf', account: OPEN_KFID, externalId: 'wmHook' },
      message: { type: 'text', text: '第一条', images: [] },
      state: null,
    });
    expect(first.body.customer.id).toMatch(/^cus_[a-z2-7]{20}$/);
    await h.customerSays('wmHook', '第二条');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmHook').length === 2);
    expect(hook.requests[1]!.body.state).toEqual({ turns: ['第一条'] });
    expect(hook.requests[1]!.body.customer.id).toBe(first.body.customer.id);
    await h.customerSays('wmHook', '重置');
    await h.customerSays('wmHook', '第三条');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmHook').length === 4);
    expect(hook.requests[2]!.body.state).toBeNull();
  });

  it('a failing endpoint (500, then retries used up) gives REPLY_ON_ERROR', async () => {
    hook = await startFakeWebhook({ token: null });
    hook.setDefault({ kind: 'status', status: 500 });
    h = await startHarness({ env: { LLM_PROVIDER: 'webhook', WEBHOOK_URL: hook.url } });
    await h.customerSays('wmHookFail', '在吗');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmHookFail').length === 1);
    expect(textsTo(h.fake, 'wmHookFail')).toEqual([h.config.replies.onError]);
    expect(hook.requests.length).toBe(3);
    expect(hook.requests[0]!.headers.authorization).toBeUndefined();
  });
});
