import { afterEach, describe, expect, it } from 'vitest';
import { buildKfCallback, postCallback } from '../fakes/wecom-kf.js';
import { CREDS, OPEN_KFID, sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { redisClusterNodes, redisUrl } from '../helpers/redis.js';

/** Time to let any duplicate (a second pull, a re-run) show up before counting replies. */
const SETTLE_MS = 400;
const nowS = () => Math.floor(Date.now() / 1000);

for (const store of ['memory', 'redis', 'redis cluster'] as const) {
  describe.skipIf((store === 'redis' && !redisUrl) || (store === 'redis cluster' && !redisClusterNodes))(`kf flow (${store} store)`, () => {
    let h: Harness;
    const start = (o: Parameters<typeof startHarness>[0] = {}) =>
      startHarness({ ...o, redis: store === 'redis cluster' ? 'cluster' : store === 'redis' });
    afterEach(async () => {
      await h?.close();
    });

    it('the same callback delivered 3× concurrently → one reply', async () => {
      h = await start();
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmA', content: '你好' });
      const cb = buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: h.fake.issueSyncToken() });
      const acks = await Promise.all([1, 2, 3].map(() => postCallback(h.url, '/wecom/kf/callback', cb)));
      expect(acks.map((a) => [a.status, a.body])).toEqual([
        [200, 'success'],
        [200, 'success'],
        [200, 'success'],
      ]);
      await h.fake.waitFor(() => textsTo(h.fake, 'wmA').length >= 1);
      await sleep(SETTLE_MS);
      expect(textsTo(h.fake, 'wmA')).toEqual(['你好']);
    });

    it('send_msg refused with 42001 twice in a row (a token race): retried after a fresh token, answered once', async () => {
      h = await start();
      h.fake.failNext('send_msg', 42001, 2);
      await h.customerSays('wmTok', '令牌');
      await h.fake.waitFor(() => textsTo(h.fake, 'wmTok').length >= 1, 8000);
      await sleep(SETTLE_MS);
      expect(textsTo(h.fake, 'wmTok')).toEqual(['令牌']);
      expect(h.fake.calls.filter((c) => c.api === 'send_msg').map((c) => c.errcode)).toEqual([42001, 42001, 0]);
    });

    it('pages while has_more (2 per page, an empty page with has_more 1 on the way) and answers every message', async () => {
      h = await start({ pageSize: 2 });
      const fake = h.fake;
      const users = ['wm1', 'wm2', 'wm3', 'wm4', 'wm5'];
      users.forEach((u, i) => fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: u, content: `问题${i}` }));
      fake.insertEmptyPage(OPEN_KFID);
      await h.callback();
      await fake.waitFor(() => fake.sent.length >= 5);
      await sleep(SETTLE_MS);
      expect(users.map((u) => textsTo(fake, u))).toEqual([['问题0'], ['问题1'], ['问题2'], ['问题3'], ['问题4']]);
      const pulls = fake.calls.filter((c) => c.api === 'sync_msg');
      expect(pulls.length).toBeGreaterThanOrEqual(4);
      expect(pulls.every((c) => c.body.limit === 1000 && c.body.open_kfid === OPEN_KFID)).toBe(true);
    });

    it('a message that lands during a pull is answered without another pull request from WeCom', async () => {
      h = await start();
      h.fake.setDelay('sync_msg', 300);
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmLate', content: 'first' });
      await h.callback();
      await h.fake.waitFor(() => h.fake.calls.some((c) => c.api === 'sync_msg'));
      // Lands while the first sync_msg is in flight; its callback finds the pull lock held.
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmLate', content: 'second' });
      const ack = await h.callback();
      expect(ack.status).toBe(200);
      await h.fake.waitFor(() => textsTo(h.fake, 'wmLate').length >= 2, 8000);
      await sleep(SETTLE_MS);
      expect(textsTo(h.fake, 'wmLate')).toEqual(['first', 'second']);
    });

    it('answers customers (origin 3) only; servicer messages and other events get nothing', async () => {
      h = await start();
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmO', content: 'from servicer', origin: 5 });
      h.fake.enterSession({ open_kfid: OPEN_KFID, external_userid: 'wmO', withWelcomeCode: false });
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmO', content: 'from customer' });
      await h.callback();
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      await sleep(SETTLE_MS);
      expect(h.fake.sent.map((s) => s.content)).toEqual(['from customer']);
    });

    it('non-text messages get REPLY_UNSUPPORTED', async () => {
      h = await start();
      h.fake.addMessage({
        open_kfid: OPEN_KFID,
        external_userid: 'wmImg',
        origin: 3,
        msgtype: 'image',
        image: { media_id: 'MEDIA_1' },
      });
      await h.callback();
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      expect(textsTo(h.fake, 'wmImg')).toEqual([h.config.replies.unsupported]);
    });

    it('cold start answers only recent messages; afterwards only the age limit applies', async () => {
      h = await start({ env: { KF_MAX_MESSAGE_AGE_S: '3600' } });
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmC', content: 'old', send_time: nowS() - 400 });
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmC', content: 'new', send_time: nowS() - 10 });
      await h.callback();
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      await sleep(SETTLE_MS);
      expect(textsTo(h.fake, 'wmC')).toEqual(['new']);
      // With a cursor stored, a 20-minute-old message is answered, a 2-hour-old one (> KF_MAX_MESSAGE_AGE_S) is not.
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmC', content: 'too old', send_time: nowS() - 7200 });
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmC', content: 'delayed', send_time: nowS() - 1200 });
      await h.callback();
      await h.fake.waitFor(() => h.fake.sent.length >= 2);
      await sleep(SETTLE_MS);
      expect(textsTo(h.fake, 'wmC')).toEqual(['new', 'delayed']);
    });

    it('a cold start cut short after its first page resumes as a cold start (old messages stay unanswered)', async () => {
      h = await start({ pageSize: 1 });
      const fake = h.fake;
      fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmCS', content: 'young one', send_time: nowS() - 5 });
      fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmCS', content: 'twenty minutes old', send_time: nowS() - 1200 });
      fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmCS', content: 'young two', send_time: nowS() - 5 });
      fake.setDelay('sync_msg', 300);
      await h.callback();
      await fake.waitFor(() => fake.calls.filter((c) => c.api === 'sync_msg').length === 1);
      fake.failNext('sync_msg', 48002); // the second page fails: the pull stops with a cursor saved
      await fake.waitFor(() => fake.calls.some((c) => c.api === 'sync_msg' && c.errcode === 48002), 3000);
      fake.setDelay('sync_msg', 0);
      await sleep(100);
      await h.callback();
      await fake.waitFor(() => textsTo(fake, 'wmCS').length >= 2);
      await sleep(SETTLE_MS);
      expect(textsTo(fake, 'wmCS')).toEqual(['young one', 'young two']);
    });

    it('a revoked access_token (42001) is refreshed once and the call retried', async () => {
      h = await start();
      await h.customerSays('wmT', 'one');
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      expect(h.fake.gettokenCount()).toBe(1);
      h.fake.expireAccessTokens();
      await h.customerSays('wmT', 'two');
      await h.fake.waitFor(() => h.fake.sent.length >= 2);
      expect(textsTo(h.fake, 'wmT')).toEqual(['one', 'two']);
      expect(h.fake.gettokenCount()).toBe(2);
      const leaked = h.logs.raw.filter((l) => h.fake.calls.some((c) => c.query.access_token && l.includes(c.query.access_token)));
      expect(leaked).toEqual([]);
    });

    it('an expired callback Token (95007) → the pull goes on without it', async () => {
      h = await start();
      const token = h.fake.issueSyncToken();
      h.fake.expireSyncTokens();
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmE', content: 'still answered' });
      const ack = await postCallback(h.url, '/wecom/kf/callback', buildKfCallback(CREDS, { open_kfid: OPEN_KFID, syncToken: token }));
      expect(ack.status).toBe(200);
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      const pulls = h.fake.calls.filter((c) => c.api === 'sync_msg');
      expect(pulls[0]?.errcode).toBe(95007);
      expect(pulls[1]?.body.token).toBeUndefined();
      expect(textsTo(h.fake, 'wmE')).toEqual(['still answered']);
    });

    it('a callback without OpenKfId pulls all accounts', async () => {
      h = await start();
      h.fake.addCustomerText({ open_kfid: 'wkOther', external_userid: 'wmX', content: 'other account' });
      await postCallback(h.url, '/wecom/kf/callback', buildKfCallback(CREDS, { syncToken: h.fake.issueSyncToken() }));
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      expect(h.fake.sent[0]).toMatchObject({ open_kfid: 'wkOther', touser: 'wmX', content: 'other account' });
      expect(h.fake.calls.find((c) => c.api === 'sync_msg')?.body.open_kfid).toBeUndefined();
    });

    it('enter_session with a welcome_code → WELCOME_MESSAGE via send_msg_on_event; none without the setting', async () => {
      h = await start({ env: { WELCOME_MESSAGE: '您好，我是智能助手' } });
      const { welcome_code } = h.fake.enterSession({ open_kfid: OPEN_KFID, external_userid: 'wmW', withWelcomeCode: true });
      await h.callback();
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      await sleep(SETTLE_MS);
      expect(h.fake.sent).toHaveLength(1);
      expect(h.fake.sent[0]).toMatchObject({ api: 'send_msg_on_event', code: welcome_code, content: '您好，我是智能助手' });
      await h.close();

      h = await start();
      h.fake.enterSession({ open_kfid: OPEN_KFID, external_userid: 'wmW2', withWelcomeCode: true });
      h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmW2', content: 'marker' });
      await h.callback();
      await h.fake.waitFor(() => h.fake.sent.length >= 1);
      await sleep(SETTLE_MS);
      expect(h.fake.sent.map((s) => s.api)).toEqual(['send_msg']);
    });

    it('a long answer goes out as 4 parts plus a fifth with the continue hint, in order; 继续 gets the rest', async () => {
      h = await start();
      const paragraphs = Array.from({ length: 30 }, (_, i) => `第${i}段：${'这是一段很长的回答内容。'.repeat(10)}`);
      const long = paragraphs.join('\n\n');
      expect(Buffer.byteLength(long)).toBeGreaterThan(9000);
      await h.customerSays('wmL', long);
      await h.fake.waitFor(() => h.fake.sent.length >= 5);
      await sleep(SETTLE_MS);
      const parts = textsTo(h.fake, 'wmL');
      expect(parts).toHaveLength(5);
      expect(parts.every((p) => Buffer.byteLength(p) <= 2048)).toBe(true);
      expect(parts[4]).toMatch(/回复“继续”查看剩余部分/);
      expect(parts[0]?.startsWith('第0段')).toBe(true);
      await h.customerSays('wmL', '继续');
      await h.fake.waitFor(() => h.fake.sent.length >= 6);
      await sleep(SETTLE_MS);
      const more = textsTo(h.fake, 'wmL').slice(5);
      expect(more).toHaveLength(1);
      // Everything was delivered exactly once, in order (white space at the cuts aside).
      const strip = (s: string) => s.replace(/（内容较长，回复“继续”查看剩余部分）/, '').replace(/\s/g, '');
      expect(strip([...parts, ...more].join(''))).toBe(strip(long));
    });

    it('outbound msgids are ≤ 32 bytes of [0-9A-Za-z_-], unique, and never the inbound msgid', async () => {
      h = await start();
      const inbound = await h.customerSays('wmM', 'x'.repeat(3000));
      await h.fake.waitFor(() => h.fake.sent.length >= 2);
      const ids = h.fake.sent.map((s) => s.msgid);
      expect(ids.every((id) => /^[0-9A-Za-z_-]{1,32}$/.test(id))).toBe(true);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).not.toContain(inbound);
      expect(h.fake.calls.filter((c) => c.api === 'send_msg').every((c) => c.errcode === 0)).toBe(true);
    });
  });
}
