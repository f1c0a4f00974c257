import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { outboundMsgid } from '../../src/channels/wecom-kf/send.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { CREDS, OPEN_KFID, sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';

const SETTLE_MS = 400;
const API_KEY = 'sk-test-0123456789abcdef';

/**
 * Hand-off to a human (docs/configuration.md "Keywords", "Hand-off"; issue 6 item 6) through the real server, the fake
 * WeCom's conversation state machine (service_state/get, trans, msg_code, session_status_change events) and a fake
 * LLM that counts its calls.
 */
describe('kf hand-off to a human', () => {
  let h: Harness;
  let llm: FakeOpenAI;
  const start = (env: Record<string, string> = {}) =>
    startHarness({
      redis: redisUrl !== '',
      env: { LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: API_KEY, ...env },
    });
  const calls = (api: string) => h.fake.calls.filter((c) => c.api === api);
  beforeEach(async () => {
    llm = await startFakeOpenAI({ apiKey: API_KEY });
  });
  afterEach(async () => {
    await h?.close();
    await llm.close();
  });

  it('a hand-off keyword moves the conversation to the queue, tells the customer through msg_code, then the bot stays silent until the session ends', async () => {
    h = await start();
    await h.customerSays('wmA', '你好');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(llm.requests).toHaveLength(1);

    await h.customerSays('wmA', ' 转人工 ');
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    const trans = calls('service_state_trans');
    expect(trans).toHaveLength(1);
    expect(trans[0]?.body).toEqual({ open_kfid: OPEN_KFID, external_userid: 'wmA', service_state: 2 });
    const told = h.fake.sent[1];
    expect(told?.api).toBe('send_msg_on_event');
    expect(told?.content).toBe(h.config.replies.onHandoff);
    expect(h.fake.serviceState(OPEN_KFID, 'wmA')).toBe(2);
    expect(llm.requests).toHaveLength(1);

    // While the queue or a servicer holds it: no answer and no LLM call.
    await h.customerSays('wmA', '还在吗？');
    h.fake.servicerTakes(OPEN_KFID, 'wmA', 'zhangsan');
    await h.callback();
    await h.customerSays('wmA', '你是真人吗？');
    await sleep(SETTLE_MS);
    expect(h.fake.sent).toHaveLength(2);
    expect(llm.requests).toHaveLength(1);

    // The servicer ends it: the bot answers again.
    h.fake.endSession(OPEN_KFID, 'wmA');
    await h.customerSays('wmA', '谢谢');
    await h.fake.waitFor(() => h.fake.sent.length >= 3);
    expect(textsTo(h.fake, 'wmA')[2]).toBe('AI:谢谢');
    expect(llm.requests).toHaveLength(2);
  });

  it('HANDOFF_SERVICE_STATE=3 hands the conversation to the named servicer', async () => {
    h = await start({ HANDOFF_SERVICE_STATE: '3', HANDOFF_SERVICER_USERID: 'zhangsan', REPLY_ON_HANDOFF: '已为您转接张三' });
    await h.customerSays('wmB', '人工客服');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(calls('service_state_trans')[0]?.body).toEqual({
      open_kfid: OPEN_KFID,
      external_userid: 'wmB',
      service_state: 3,
      servicer_userid: 'zhangsan',
    });
    expect(h.fake.serviceState(OPEN_KFID, 'wmB')).toBe(3);
    expect(h.fake.sent[0]).toMatchObject({ api: 'send_msg_on_event', content: '已为您转接张三' });
    expect(llm.requests).toHaveLength(0);
  });

  it('a refused transfer (servicer not receiving) is told with REPLY_ON_ERROR, and the bot keeps answering', async () => {
    h = await start({ HANDOFF_SERVICE_STATE: '3', HANDOFF_SERVICER_USERID: 'lisi' });
    await h.customerSays('wmC', '人工');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(calls('service_state_trans')[0]?.errcode).toBe(95014);
    expect(textsTo(h.fake, 'wmC')).toEqual([h.config.replies.onError]);
    await h.customerSays('wmC', '那你回答吧');
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    expect(textsTo(h.fake, 'wmC')[1]).toBe('AI:那你回答吧');
  });

  it('asks service_state/get once for a conversation it knows nothing of; a human-held one gets no answer', async () => {
    h = await start();
    await h.customerSays('wmD', '第一条');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await h.customerSays('wmD', '第二条');
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    expect(calls('service_state_get').map((c) => c.body)).toEqual([{ open_kfid: OPEN_KFID, external_userid: 'wmD' }]);

    // A conversation moved to the queue by someone else (another system calling trans, which logs no event): the
    // bridge learns it from get, so the customer's message gets no bot answer and no LLM call.
    const before = llm.requests.length;
    h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmE', content: '在吗' });
    const { access_token } = (await (await fetch(`${h.fake.url}/cgi-bin/gettoken?corpid=${CREDS.corpId}&corpsecret=${CREDS.kfSecret}`)).json()) as {
      access_token: string;
    };
    const moved = await fetch(`${h.fake.url}/cgi-bin/kf/service_state/trans?access_token=${access_token}`, {
      method: 'POST',
      body: JSON.stringify({ open_kfid: OPEN_KFID, external_userid: 'wmE', service_state: 2 }),
    });
    expect(((await moved.json()) as { errcode: number }).errcode).toBe(0);
    await h.callback();
    await h.fake.waitFor(() => calls('service_state_get').some((c) => c.body.external_userid === 'wmE'));
    await sleep(SETTLE_MS);
    expect(textsTo(h.fake, 'wmE')).toEqual([]);
    expect(llm.requests.length).toBe(before);
    const metrics = await h.deps.metrics.registry.metrics();
    expect(metrics).toMatch(/bridge_kf_human_held_total 1/);
  });

  it('service_state/get failing means "unknown, answer"', async () => {
    h = await start();
    h.fake.failNext('service_state_get', -1, 5);
    await h.customerSays('wmF', '你好');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(textsTo(h.fake, 'wmF')).toEqual(['AI:你好']);
  });

  it('after a 95018 the bridge asks who holds the conversation and stays silent while a human does', async () => {
    h = await start();
    await h.customerSays('wmG', '你好');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    // A servicer takes over; the event is not pulled before the next message's reply is attempted.
    h.fake.failNext('send_msg', 95018);
    await h.customerSays('wmG', '问题一');
    await h.fake.waitFor(() => calls('service_state_get').length >= 2);
    expect(h.fake.sent).toHaveLength(1);
    expect(llm.requests).toHaveLength(2);
  });

  it('a recalled message is not answered; a msg_send_fail cancels the rest of that reply', async () => {
    h = await start();
    const recalled = h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmR', content: '发错了' });
    h.fake.addEvent({ event_type: 'user_recall_msg', open_kfid: OPEN_KFID, external_userid: 'wmR', recall_msgid: recalled });
    const failing = h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmS', content: '你好' });
    h.fake.addEvent({
      event_type: 'msg_send_fail',
      open_kfid: OPEN_KFID,
      external_userid: 'wmS',
      fail_msgid: outboundMsgid(OPEN_KFID, failing, 0),
      fail_type: 5,
    });
    await h.callback();
    await h.customerSays('wmR', '这条才是');
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    await sleep(SETTLE_MS);
    expect(textsTo(h.fake, 'wmR')).toEqual(['AI:这条才是']);
    expect(textsTo(h.fake, 'wmS')).toEqual([]);
    const metrics = await h.deps.metrics.registry.metrics();
    expect(metrics).toMatch(/bridge_kf_send_failed_total\{fail_type="5"\} 1/);
  });

  it('a message recalled while the LLM is answering gets no reply', async () => {
    h = await start();
    llm.script({ kind: 'answer', text: '很快就回复', delayMs: 600 });
    const msgid = await h.customerSays('wmV', '发错了');
    await llm.waitForRequests(1);
    await sleep(150);
    h.fake.addEvent({ event_type: 'user_recall_msg', open_kfid: OPEN_KFID, external_userid: 'wmV', recall_msgid: msgid });
    await h.callback();
    await sleep(1000 + SETTLE_MS);
    expect(llm.requests).toHaveLength(1);
    expect(textsTo(h.fake, 'wmV')).toEqual([]);
  });
});
