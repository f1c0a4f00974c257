import { afterEach, describe, expect, it } from 'vitest';
import { textMsg } from '../fakes/wechat-mp-push.js';
import { sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { MP, answeredText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';
import { redisUrl } from '../helpers/redis.js';

const NOTICE = '您发送消息太频繁了，请稍等一分钟再发。';
const LIMIT = { RATE_LIMIT_PER_CUSTOMER_PER_MIN: '3' };

/** RATE_LIMIT_PER_CUSTOMER_PER_MIN: per customer, in the pipeline (kf callbacks carry no customer). */
describe('per-customer rate limit', () => {
  let h: Harness | null = null;
  let m: MpHarness | null = null;
  afterEach(async () => {
    await h?.close();
    await m?.close();
    h = null;
    m = null;
  });

  it('kf (redis): past the limit the customer is told once, later messages get no reply; others are not affected', async () => {
    h = await startHarness({ redis: redisUrl !== '', env: LIMIT });
    for (let i = 1; i <= 5; i++) h.fake.addCustomerText({ open_kfid: 'wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw', external_userid: 'wmFlood', content: `消息${i}` });
    await h.customerSays('wmCalm', '你好');
    await h.fake.waitFor(() => h!.fake.sent.length >= 5, 5000);
    await sleep(400);
    expect(textsTo(h.fake, 'wmFlood')).toEqual(['消息1', '消息2', '消息3', NOTICE]);
    expect(textsTo(h.fake, 'wmCalm')).toEqual(['你好']);
    expect(await h.deps.metrics.registry.getSingleMetricAsString('bridge_rate_limited_total')).toContain('agent="default"} 2');
  });

  for (const [env, expected] of [
    [{}, 'the default 20: the 21st message gets the notice'],
    [{ RATE_LIMIT_PER_CUSTOMER_PER_MIN: '0' }, '0 turns it off: all 21 answered'],
  ] as const) {
    it(expected, async () => {
      h = await startHarness({ env });
      for (let i = 1; i <= 21; i++) {
        await h.customerSays('wmMany', `第${i}条`);
        await h.fake.waitFor(() => textsTo(h!.fake, 'wmMany').length === i, 5000);
      }
      const last = textsTo(h.fake, 'wmMany').at(-1);
      expect(last).toBe('RATE_LIMIT_PER_CUSTOMER_PER_MIN' in env ? '第21条' : NOTICE);
    });
  }

  it('Official Account passive mode: the notice is the passive reply, the next over-limit message gets `success`', async () => {
    m = await startMpHarness({ env: { ...LIMIT, WECHAT_MP_REPLY_MODE: 'passive' } });
    const replies: string[] = [];
    for (let i = 1; i <= 5; i++) replies.push(answeredText(await m.deliver(textMsg(MP, 'oFlood', `问${i}`), 'safe'), 'safe'));
    expect(replies).toEqual(['问1', '问2', '问3', NOTICE, 'success']);
  });
});
