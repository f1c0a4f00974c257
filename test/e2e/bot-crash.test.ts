import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_PLACEHOLDER } from '../../src/channels/wecom-bot/routes.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { createFakeWecomBot, newBotCredentials } from '../fakes/wecom-bot.js';
import { botText } from '../fakes/wecom-bot-messages.js';
import { startChildServer, stopAllChildServers } from '../helpers/child-server.js';
import { sleep } from '../helpers/harness.js';
import { canStartRedis, startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

/**
 * issue 14 "the same guarantees": a stream whose process died (kill -9 mid-answer) is finished by another process,
 * never left spinning. Callback mode, two real server processes one after the other on one real Redis.
 */
describe.skipIf(!canStartRedis)('smart bot: a stream whose process died is finished by another', () => {
  let redis: PrivateRedis;
  let llm: FakeOpenAI;
  const bot = newBotCredentials();

  beforeAll(async () => {
    redis = await startPrivateRedis();
    await redis.flush(6);
    llm = await startFakeOpenAI({ apiKey: 'sk-test' });
  });
  afterAll(async () => {
    await stopAllChildServers();
    await llm.close();
    await redis?.stop();
  });

  it('kill -9 while the answer streams; the restarted process answers the same stream (its job is taken over)', async () => {
    const env = {
      REDIS_URL: redis.urlFor(6),
      WECOM_BOTS: JSON.stringify({ [bot.botId]: { token: bot.token, encodingAesKey: bot.encodingAesKey } }),
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: llm.baseUrl,
      OPENAI_API_KEY: 'sk-test',
      // A long deadline: the job's lock is short and renewed, so a dead process's job is taken over in ≤ 15 s anyway.
      LLM_TIMEOUT_MS: '60000',
      LOG_LEVEL: 'warn',
    };
    // First attempt: slow enough to be killed mid-stream; the re-run's answer comes at once.
    llm.script({ kind: 'answer', text: '第一次回答写到一半'.repeat(20), chunkSize: 2, delayMs: 100 }, { kind: 'answer', text: '重新回答' });
    const a = await startChildServer(env);
    const atA = createFakeWecomBot({ baseUrl: a.url, ...bot });
    const first = await atA.send(botText('会崩溃的问题'));
    const id = first.reply?.stream?.id as string;
    expect(first.reply?.stream).toMatchObject({ finish: false, content: BOT_PLACEHOLDER });
    const refresh = { msgtype: 'stream', stream: { id } } as never;
    let shown = '';
    for (let i = 0; i < 100 && !shown.startsWith('第一次'); i++) {
      await sleep(50);
      shown = (await atA.send(refresh)).reply?.stream?.content ?? '';
    }
    expect(shown.startsWith('第一次')).toBe(true);
    await a.stop('SIGKILL');

    const b = await startChildServer(env);
    const atB = createFakeWecomBot({ baseUrl: b.url, ...bot });
    const killedAt = Date.now();
    let final: { finish?: boolean; content?: string } | undefined;
    while (Date.now() - killedAt < 30_000) {
      final = (await atB.send(refresh)).reply?.stream;
      if (final?.finish) break;
      await sleep(500);
    }
    expect(final).toMatchObject({ finish: true, content: '重新回答' });
    expect(llm.requests.length).toBe(2);
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    console.log(`smart-bot stream finished by the restarted process ${Date.now() - killedAt} ms after kill -9`);
  }, 90_000);
});
