/**
 * `npm run demo`: an offline end-to-end run. The real server (dist/main.js) runs as a child process, a local
 * stand-in for WeCom serves gettoken / sync_msg (answering 200 ms late, to show the ack does not wait) /
 * send_msg, and this script plays the customers: it adds messages to the stand-in, posts real encrypted kf
 * callbacks over a socket, checks each ack arrived in < 50 ms, and prints the conversation. Exit 0 only if every
 * reply arrived exactly once. Needs no credentials, no Redis and no network beyond 127.0.0.1.
 * The LLM is `echo` unless LLM_PROVIDER (and its variables) are set in the environment or .env.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildKfCallback, postCallback, startFakeWecom, type FakeWecom } from '../test/fakes/wecom-kf.js';
import { freePort } from '../test/setup/services.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ACK_LIMIT_MS = 50;
const REPLY_TIMEOUT_MS = Number(process.env.DEMO_REPLY_TIMEOUT_MS ?? 90_000);
const CREDS = {
  corpId: 'wwDEMO0000000000',
  kfSecret: 'demo-secret-not-real',
  token: 'DemoToken123',
  encodingAesKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
};
const KF = 'wkDEMO_kf_account_0001';
const WELCOME = '您好，我是智能客服，有什么可以帮您？';

type Step =
  | { who: string; user: string; text: string }
  | { who: string; user: string; image: true }
  | { who: string; user: string; enter: true }
  | { who: string; user: string; text: string; retries: number };

const STEPS: Step[] = [
  { who: '顾客 小王', user: 'wmDemoWang', enter: true },
  { who: '顾客 小王', user: 'wmDemoWang', text: '你好，请问你们几点营业？' },
  { who: '顾客 Lee', user: 'wmDemoLee', text: 'Hi, do you ship to Hong Kong?' },
  { who: '顾客 小王', user: 'wmDemoWang', text: '周末也营业吗？', retries: 3 },
  { who: '顾客 小王', user: 'wmDemoWang', image: true },
  { who: '顾客 小王', user: 'wmDemoWang', text: '重置' },
  { who: '顾客 Lee', user: 'wmDemoLee', text: 'Thanks!' },
];

async function main(): Promise<number> {
  const fake = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
  fake.setDelay('sync_msg', 200);
  const port = await freePort();
  const server = spawn(process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.DEMO_LOG_LEVEL ?? 'warn',
      WECOM_CORP_ID: CREDS.corpId,
      WECOM_KF_SECRET: CREDS.kfSecret,
      WECOM_TOKEN: CREDS.token,
      WECOM_ENCODING_AES_KEY: CREDS.encodingAesKey,
      WECOM_API_BASE_URL: fake.url,
      WELCOME_MESSAGE: WELCOME,
      // The demo keeps to memory even when .env names a Redis: it must never touch a real deployment's data.
      REDIS_URL: '',
    },
  });
  const serverOutput: string[] = [];
  server.stdout.on('data', (c: Buffer) => serverOutput.push(c.toString()));
  server.stderr.on('data', (c: Buffer) => serverOutput.push(c.toString()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url);
    console.log(`wechat-ai-bridge demo — server pid ${server.pid} on ${url}, WeCom stand-in on ${fake.url}`);
    console.log(`LLM provider: ${process.env.LLM_PROVIDER ?? 'echo'} (set LLM_PROVIDER and its variables to try a real one)\n`);
    const failures = await converse(fake, url);
    summarise(fake, failures);
    return failures.length === 0 ? 0 : 1;
  } catch (e) {
    console.error(`\ndemo failed: ${e instanceof Error ? e.message : String(e)}`);
    console.error(`--- server output ---\n${serverOutput.join('').slice(-4000)}`);
    return 1;
  } finally {
    server.kill('SIGTERM');
    await fake.close();
  }
}

async function converse(fake: FakeWecom, url: string): Promise<string[]> {
  const failures: string[] = [];
  for (const step of STEPS) {
    const before = fake.sent.length;
    if ('enter' in step) {
      fake.enterSession({ open_kfid: KF, external_userid: step.user, withWelcomeCode: true });
      console.log(`[${step.who}] (opens the chat)`);
    } else if ('image' in step) {
      fake.addMessage({ open_kfid: KF, external_userid: step.user, origin: 3, msgtype: 'image', image: { media_id: 'DEMO_MEDIA' } });
      console.log(`[${step.who}] (sends a picture)`);
    } else {
      fake.addCustomerText({ open_kfid: KF, external_userid: step.user, content: step.text });
      console.log(`[${step.who}] ${step.text}`);
    }
    const deliveries = 'retries' in step ? step.retries : 1;
    const started = Date.now();
    const cb = buildKfCallback(CREDS, { open_kfid: KF, syncToken: fake.issueSyncToken() });
    const acks = await Promise.all(Array.from({ length: deliveries }, () => postCallback(url, '/wecom/kf/callback', cb)));
    const slowest = Math.max(...acks.map((a) => a.ms));
    for (const a of acks) if (a.status !== 200 || a.body !== 'success') failures.push(`ack was ${a.status} ${a.body}`);
    if (slowest >= ACK_LIMIT_MS) failures.push(`ack took ${slowest.toFixed(1)} ms (limit ${ACK_LIMIT_MS} ms)`);
    await fake.waitFor(() => fake.sent.length > before, REPLY_TIMEOUT_MS).catch(() => failures.push(`no reply to ${step.who}`));
    await new Promise((r) => setTimeout(r, 300)); // any duplicate would show up here
    const replies = fake.sent.slice(before);
    for (const r of replies) console.log(`    [机器人 → ${step.who}] ${r.content ?? `(${r.msgtype})`}`);
    const note = deliveries > 1 ? `, WeCom delivered the callback ${deliveries}× at once` : '';
    const replyMs = replies[0] ? Math.round(replies[0].at - started) : NaN;
    console.log(`    ack ${slowest.toFixed(1)} ms (sync_msg answers 200 ms late), reply after ${replyMs} ms${note}\n`);
    if (replies.length > 1 && replies.every((r) => r.content === replies[0]?.content)) failures.push(`duplicate reply to ${step.who}`);
  }
  return failures;
}

function summarise(fake: FakeWecom, failures: string[]): void {
  const sends = fake.calls.filter((c) => c.api === 'send_msg' || c.api === 'send_msg_on_event');
  const pulls = fake.calls.filter((c) => c.api === 'sync_msg').length;
  console.log(`${STEPS.length} customer events → ${fake.sent.length} replies accepted by the stand-in, ${pulls} sync_msg pulls, ${fake.gettokenCount()} gettoken`);
  if (sends.some((c) => c.errcode !== 0)) failures.push(`WeCom refused a send: ${JSON.stringify(sends.filter((c) => c.errcode !== 0).map((c) => c.errcode))}`);
  if (fake.sent.length !== STEPS.length) failures.push(`expected ${STEPS.length} replies, got ${fake.sent.length}`);
  if (failures.length === 0) console.log('demo OK: every customer event got exactly one reply.');
  else console.error(`demo FAILED:\n  - ${failures.join('\n  - ')}`);
}

async function waitHealthy(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('server did not become healthy within 15 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

process.exitCode = await main();
