import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeWecomBot, newBotCredentials, type FakeWecomBot } from '../fakes/wecom-bot.js';
import { startHarness, type Harness } from '../helpers/harness.js';

/**
 * Bad input on the smart-bot routes (interface.md "Smart bot", "Callback checks"): each refusal has its status, and
 * nothing is processed: no job, no stream, no reply, no LLM call.
 */
describe('smart-bot callback checks', () => {
  const bot = newBotCredentials();
  const ws = newBotCredentials();
  let h: Harness;
  let fake: FakeWecomBot;
  const text = { msgid: 'CAIQhostile', aibotid: bot.botId, chattype: 'single', from: { userid: 'u1' }, msgtype: 'text', text: { content: 'hi' } };

  beforeAll(async () => {
    h = await startHarness({
      env: {
        WECOM_BOTS: JSON.stringify({ [bot.botId]: { token: bot.token, encodingAesKey: bot.encodingAesKey }, [ws.botId]: { mode: 'websocket', secret: 's' } }),
        // The long-connection bot must not dial anything during this test.
        WECOM_BOT_WS_URL: 'ws://127.0.0.1:9',
        MAX_BODY_BYTES: '4096',
      },
    });
    fake = createFakeWecomBot({ baseUrl: h.url, ...bot });
  });
  afterAll(async () => {
    await h.close();
  });

  const nothingProcessed = async () => {
    const counts = await h.deps.jobs.counts();
    expect(counts.waiting + counts.active + counts.delayed).toBe(0);
    const replies = await h.deps.metrics.replies.get();
    expect(replies.values.filter((v) => v.labels.channel === 'bot' && v.value > 0)).toEqual([]);
  };

  it('404 for an unknown bot or a long-connection bot, before the body is read (no 413)', async () => {
    const big = 'x'.repeat(100_000);
    expect((await fake.sendRaw({ path: '/wecom/bot/callback/nosuchbot', body: big })).status).toBe(404);
    expect((await fake.sendRaw({ path: `/wecom/bot/callback/${ws.botId}`, body: big })).status).toBe(404);
    expect((await fake.sendRaw({ path: `/wecom/bot/callback/${ws.botId}`, method: 'GET' })).status).toBe(404);
    await nothingProcessed();
  });

  it('413 for a body over MAX_BODY_BYTES; 400 for a missing or long query parameter', async () => {
    const sealed = fake.seal(text);
    expect((await fake.sendRaw({ query: sealed.query, body: JSON.stringify({ encrypt: 'A'.repeat(5000) }) })).status).toBe(413);
    const { nonce: _n, ...noNonce } = sealed.query;
    expect((await fake.sendRaw({ query: noNonce, body: sealed.body })).status).toBe(400);
    expect((await fake.sendRaw({ query: { ...sealed.query, nonce: '1'.repeat(129) }, body: sealed.body })).status).toBe(400);
    await nothingProcessed();
  });

  it('400 for a body that is not JSON, has no encrypt, or too many members', async () => {
    const sealed = fake.seal(text);
    for (const body of ['<xml><Encrypt>x</Encrypt>', '{"encrypt":', '{"other":"x"}', `{${Array.from({ length: 80 }, (_, i) => `"k${i}":1`).join(',')}}`]) {
      expect((await fake.sendRaw({ query: sealed.query, body })).status, body.slice(0, 30)).toBe(400);
    }
    await nothingProcessed();
  });

  it('401 for a bad signature, a stale timestamp and a non-empty receiveid; 400 for bad AES and bad inner JSON', async () => {
    const forged = fake.seal(text, { msg_signature: 'f'.repeat(40) });
    expect((await fake.sendRaw({ query: forged.query, body: forged.body })).status).toBe(401);
    const stale = fake.seal(text, { timestamp: String(Math.floor(Date.now() / 1000) - 3600) });
    expect((await fake.sendRaw({ query: stale.query, body: stale.body })).status).toBe(401);
    const foreign = fake.seal(text, { receiveid: 'wwcorp' });
    expect((await fake.sendRaw({ query: foreign.query, body: foreign.body })).status).toBe(401);
    const notJson = fake.seal('this is not json');
    expect((await fake.sendRaw({ query: notJson.query, body: notJson.body })).status).toBe(400);
    const badUser = fake.seal({ ...text, from: { userid: 'a:b' } });
    expect((await fake.sendRaw({ query: badUser.query, body: badUser.body })).status).toBe(400);
    // A valid signature over ciphertext that is not WeCom's AES: decrypting fails.
    const { botSignature } = await import('../fakes/wecom-bot-reference-crypto.js');
    const garbage = Buffer.alloc(48, 7).toString('base64');
    const ts = String(Math.floor(Date.now() / 1000));
    const query = { msg_signature: botSignature(bot.token, ts, '123', garbage), timestamp: ts, nonce: '123' };
    expect((await fake.sendRaw({ query, body: JSON.stringify({ encrypt: garbage }) })).status).toBe(400);
    await nothingProcessed();
  });

  it('401 replayed: a seen (timestamp, nonce, signature) carrying another body', async () => {
    const sealed = fake.seal({ ...text, msgtype: 'event', event: { eventtype: 'feedback_event' } });
    expect((await fake.sendRaw({ query: sealed.query, body: sealed.body })).status).toBe(200);
    // Same triple and the same ciphertext (so the signature holds), but another body around it.
    const res = await fake.sendRaw({ query: sealed.query, body: sealed.body.replace('{', '{ ') });
    expect(res.status).toBe(401);
    expect(h.logs.lines.some((l) => l.reason === 'replayed')).toBe(true);
    await nothingProcessed();
  });

  it('GET verification refuses a bad signature (401) and needs echostr (400)', async () => {
    const ok = await fake.verifyUrl();
    expect(ok.status).toBe(200);
    const { echostr: _e, ...rest } = { msg_signature: 'a'.repeat(40), timestamp: '1', nonce: '2', echostr: 'abc' };
    expect((await fake.sendRaw({ method: 'GET', query: rest })).status).toBe(400);
    expect((await fake.sendRaw({ method: 'GET', query: { msg_signature: 'a'.repeat(40), timestamp: '1', nonce: '2', echostr: 'abc' } })).status).toBe(401);
  });
});
