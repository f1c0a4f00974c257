/**
 * `npm run demo`: an offline end-to-end run. The real server (dist/main.js) runs as a child process next to local
 * stand-ins for WeCom and for the Official Account API, and this script plays the customers over real sockets
 * with real encrypted callbacks, printing each message with its reply:
 *  1. WeCom customer service (kf): messages added to the stand-in, kf callbacks posted, acks < 50 ms
 *     (scripts/demo/kf.ts);
 *  2. the same server also serves an Official Account in active mode (scripts/demo/mp.ts): follow → welcome as
 *     the passive reply, questions → `success` then custom/send, a 3× delivery → one answer, a menu click;
 *  3. a second server plays an unverified account in passive mode: the answer is the encrypted passive reply.
 * Exit 0 only if every customer event got exactly one reply. Needs no credentials, no Redis and no network
 * beyond 127.0.0.1. The LLM is `echo` unless LLM_PROVIDER (and its variables) are set in the environment or .env.
 */
import { startFakeMpApi, type FakeMpApi } from '../test/fakes/wechat-mp-api.js';
import { startFakeWecom, type FakeWecom } from '../test/fakes/wecom-kf.js';
import { startServer, type DemoServer } from './demo/child.js';
import { kfEnv, runKf } from './demo/kf.js';
import { MP, MP_SECRET, mpActiveEnv, mpPassiveEnv, runMpActive, runMpPassive, type PartResult } from './demo/mp.js';

const WELCOME = '您好，我是智能客服，有什么可以帮您？';

async function main(): Promise<number> {
  const stands: Array<FakeWecom | FakeMpApi> = [];
  let server: DemoServer | undefined;
  let passiveStart: Promise<DemoServer> | undefined;
  let current: DemoServer | undefined; // whose output a failure report shows
  try {
    const fake = await startFakeWecom({ corpId: 'wwDEMO0000000000', kfSecret: 'demo-secret-not-real' });
    stands.push(fake);
    fake.setDelay('sync_msg', 200);
    const mpApi = await startFakeMpApi({ appId: MP.appId, appSecret: MP_SECRET });
    const mpPassiveApi = await startFakeMpApi({ appId: MP.appId, appSecret: MP_SECRET });
    stands.push(mpApi, mpPassiveApi);
    // Both start now, side by side; the passive one is only used after the first one's conversations.
    passiveStart = startServer(mpPassiveEnv(mpPassiveApi));
    passiveStart.catch(() => undefined); // awaited below; its failure is reported there
    server = await startServer({ ...kfEnv(fake), ...mpActiveEnv(mpApi), WELCOME_MESSAGE: WELCOME });
    current = server;
    console.log(`wechat-ai-bridge demo — server pid ${server.pid} on ${server.url}, WeCom stand-in on ${fake.url}`);
    console.log(`the same server also serves an Official Account (kf + OA channels), OA API stand-in on ${mpApi.url}`);
    console.log(`LLM provider: ${process.env.LLM_PROVIDER ?? 'echo'} (set LLM_PROVIDER and its variables to try a real one)\n`);
    console.log('— WeCom customer service (微信客服, kf) —\n');
    const parts: Array<[string, PartResult]> = [['kf', await runKf(fake, server.url)]];
    parts.push(['OA active', await runMpActive(mpApi, server.url, WELCOME)]);
    current = undefined;
    const passive = await passiveStart;
    current = passive;
    parts.push(['OA passive', await runMpPassive(mpPassiveApi, passive.url, passive.pid)]);
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
