/**
 * `npm run demo`: an offline end-to-end run. The real server (dist/main.js) runs as a child process next to local
 * stand-ins for WeCom and for the Official Account API, and this script plays the customers over real sockets
 * with real encrypted callbacks, printing each message with its reply:
 *  1. WeCom customer service (kf): messages added to the stand-in, kf callbacks posted, acks timed
 *     (scripts/demo/kf.ts);
 *  2. the same server also serves an Official Account in active mode (scripts/demo/mp.ts): follow → welcome as
 *     the passive reply, questions → `success` then custom/send, a 3× delivery → one answer, a menu click;
 *  3. a second server plays an unverified account in passive mode: the answer is the encrypted passive reply;
 *  4. two WeCom smart bots on the first server, one per mode (scripts/demo/bot.ts): a callback-URL bot polled like
 *     WeCom polls it, and a long-connection bot the server dials, each answer printed as its stream grows;
 *  5. what an operator sees of the first server: one page of /admin/messages and one /v1/chat/completions answer.
 * Exit 0 only if every customer event got exactly one reply, with the right text (the offline `echo` agent's
 * replies are known exactly). Needs no credentials, no Redis and no network beyond 127.0.0.1. The shell's variables
 * and `.env` are ignored unless `npm run demo -- --env` asks for them (to try a real LLM); it prints the agent used.
 */
import { readFileSync } from 'node:fs';
import dotenv from 'dotenv';
import { startFakeMpApi, type FakeMpApi } from '../test/fakes/wechat-mp-api.js';
import { startFakeWecom, type FakeWecom } from '../test/fakes/wecom-kf.js';
import { runBots, startBotStands, type BotStands } from './demo/bot.js';
import { USE_ENV, startServer, type DemoServer } from './demo/child.js';
import { DEMO_TEXTS, kfEnv, runKf } from './demo/kf.js';
import { DEMO_ADMIN_TOKEN, DEMO_V1_KEY, runOperator } from './demo/operator.js';
import { MP, MP_SECRET, mpActiveEnv, mpPassiveEnv, runMpActive, runMpPassive, type PartResult } from './demo/mp.js';

const WELCOME = DEMO_TEXTS.welcome;

/** The agent the demo's servers really use: echo offline; with `--env`, LLM_PROVIDER from the shell, else `.env`. */
function agentInUse(): string {
  if (!USE_ENV) return 'echo (offline; `npm run demo -- --env` uses your shell and .env instead)';
  let fromFile: Record<string, string> = {};
  try {
    fromFile = dotenv.parse(readFileSync('.env'));
  } catch {
    // no .env
  }
  const provider = process.env.LLM_PROVIDER || fromFile.LLM_PROVIDER || 'echo';
  const where = process.env.LLM_PROVIDER ? 'the shell' : fromFile.LLM_PROVIDER ? '.env' : 'the default';
  return `${provider} (from ${where}; --env: your shell and .env are used)`;
}

async function main(): Promise<number> {
  const stands: Array<FakeWecom | FakeMpApi | BotStands> = [];
  let server: DemoServer | undefined;
  let passiveStart: Promise<DemoServer> | undefined;
  let current: DemoServer | undefined; // whose output a failure report shows
  try {
    const fake = await startFakeWecom({ corpId: 'wwDEMO0000000000', kfSecret: 'demo-secret-not-real' });
    stands.push(fake);
    fake.setDelay('sync_msg', 200);
    const mpApi = await startFakeMpApi({ appId: MP.appId, appSecret: MP_SECRET });
    const mpPassiveApi = await startFakeMpApi({ appId: MP.appId, appSecret: MP_SECRET });
    const bots = await startBotStands();
    stands.push(mpApi, mpPassiveApi, bots);
    // Both start now, side by side; the passive one is only used after the first one's conversations.
    passiveStart = startServer(mpPassiveEnv(mpPassiveApi));
    passiveStart.catch(() => undefined); // awaited below; its failure is reported there
    server = await startServer({
      ...kfEnv(fake),
      ...mpActiveEnv(mpApi),
      WELCOME_MESSAGE: WELCOME,
      ADMIN_TOKEN: DEMO_ADMIN_TOKEN,
      OPENAI_COMPAT_API_KEYS: DEMO_V1_KEY,
      ...bots.env,
    });
    current = server;
    console.log(`wechat-ai-bridge demo — server pid ${server.pid} on ${server.url}, WeCom stand-in on ${fake.url}`);
    console.log(`the same server also serves an Official Account (kf + OA channels), OA API stand-in on ${mpApi.url}`);
    console.log(`LLM provider: ${agentInUse()}\n`);
    console.log('— WeCom customer service (微信客服, kf) —\n');
    const parts: Array<[string, PartResult]> = [['kf', await runKf(fake, server.url)]];
    parts.push(['OA active', await runMpActive(mpApi, server.url, WELCOME)]);
    current = undefined;
    const passive = await passiveStart;
    current = passive;
    parts.push(['OA passive', await runMpPassive(mpPassiveApi, passive.url, passive.pid)]);
    current = server;
    parts.push(['smart bot', await runBots(bots, server.url)]);
    parts.push(['operator', await runOperator(server.url)]);
    return verdict(parts);
  } catch (e) {
    console.error(`\ndemo failed: ${e instanceof Error ? e.message : String(e)}`);
    if (current) console.error(`--- server output ---\n${current.outputTail()}`);
    return 1;
  } finally {
    await Promise.all([server?.stop(), passiveStart?.then((s) => s.stop(), () => undefined)]);
    await Promise.all(stands.map((s) => s.close()));
  }
}

function verdict(parts: Array<[string, PartResult]>): number {
  const failures = parts.flatMap(([, r]) => r.failures);
  const counts = parts.map(([name, r]) => `${name} ${r.got}/${r.expected}`).join(', ');
  if (failures.length === 0) {
    console.log(`demo OK: every customer event got exactly one reply (${counts}).`);
    return 0;
  }
  console.error(`demo FAILED (${counts}):\n  - ${failures.join('\n  - ')}`);
  return 1;
}

process.exitCode = await main();
