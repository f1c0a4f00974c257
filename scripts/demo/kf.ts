/**
 * The demo's WeCom customer-service (微信客服, kf) conversation. A local stand-in for WeCom serves gettoken /
 * sync_msg (answering 200 ms late, to show the ack does not wait) / send_msg; this part plays the customers: it
 * adds messages to the stand-in, posts real encrypted kf callbacks over a socket and prints each message with its
 * reply and timings. Every customer event must get exactly one reply, with the right text when the agent is the
 * offline `echo` (timings are printed, never judged: a busy machine is not a broken product).
 */
import { buildKfCallback, postCallback, type FakeWecom } from '../../test/fakes/wecom-kf.js';
import { ACK_NOTE_MS, DUPLICATE_WINDOW_MS, REPLY_TIMEOUT_MS, USE_ENV, sleep } from './child.js';

export const KF_CREDS = {
  corpId: 'wwDEMO0000000000',
  kfSecret: 'demo-secret-not-real',
  token: 'DemoToken123',
  encodingAesKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
};
const KF = 'wkDEMO_kf_account_0001';
/** The server's defaults (docs/configuration.md) for the replies that do not come from the agent. */
export const DEMO_TEXTS = {
  welcome: '您好，我是智能客服，有什么可以帮您？',
  unsupported: '抱歉，暂时还不支持这种消息类型，请用文字描述您的问题。',
  reset: '好的，我们重新开始吧。',
  handoff: '正在为您转接人工客服，请稍候。',
};

type Step =
  | { who: string; user: string; text: string }
  | { who: string; user: string; image: true }
  | { who: string; user: string; enter: true }
  | { who: string; user: string; text: string; retries: number }
  /** a message while a human holds the conversation: the bot must stay silent */
  | { who: string; user: string; text: string; silent: true };

const STEPS: Step[] = [
  { who: '顾客 小王', user: 'wmDemoWang', enter: true },
  { who: '顾客 小王', user: 'wmDemoWang', text: '你好，请问你们几点营业？' },
  { who: '顾客 Lee', user: 'wmDemoLee', text: 'Hi, do you ship to Hong Kong?' },
  { who: '顾客 小王', user: 'wmDemoWang', text: '周末也营业吗？', retries: 3 },
  { who: '顾客 小王', user: 'wmDemoWang', image: true },
  { who: '顾客 小王', user: 'wmDemoWang', text: '重置' },
  { who: '顾客 Lee', user: 'wmDemoLee', text: 'Thanks!' },
  { who: '顾客 Lee', user: 'wmDemoLee', text: '转人工' },
  { who: '顾客 Lee', user: 'wmDemoLee', text: '人工客服在吗？', silent: true },
];
/** Customer events that must get exactly one reply each. */
const ANSWERED = STEPS.filter((s) => !('silent' in s)).length;

/** The exact reply a step must get from the offline `echo` agent; null with `--env` (a real agent's words vary). */
function expectedText(step: Step): string | null {
  if (USE_ENV) return null;
  if ('enter' in step) return DEMO_TEXTS.welcome;
  if ('image' in step) return DEMO_TEXTS.unsupported;
  if (step.text === '重置') return DEMO_TEXTS.reset;
  if (step.text === '转人工') return DEMO_TEXTS.handoff;
  return step.text;
}

/** The server variables that enable the kf channel against the stand-in `fake`. */
export function kfEnv(fake: FakeWecom): Record<string, string> {
  return {
    WECOM_CORP_ID: KF_CREDS.corpId,
    WECOM_KF_SECRET: KF_CREDS.kfSecret,
    WECOM_TOKEN: KF_CREDS.token,
    WECOM_ENCODING_AES_KEY: KF_CREDS.encodingAesKey,
    WECOM_API_BASE_URL: fake.url,
  };
}

/** Plays the kf customers against the server at `url`, prints the conversation and its count line. */
export async function runKf(fake: FakeWecom, url: string): Promise<{ failures: string[]; expected: number; got: number }> {
  const failures = await converse(fake, url);
  summarise(fake, failures);
  return { failures, expected: ANSWERED, got: fake.sent.length };
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
    const cb = buildKfCallback(KF_CREDS, { open_kfid: KF, syncToken: fake.issueSyncToken() });
    const acks = await Promise.all(Array.from({ length: deliveries }, () => postCallback(url, '/wecom/kf/callback', cb)));
    const slowest = Math.max(...acks.map((a) => a.ms));
    for (const a of acks) if (a.status !== 200 || a.body !== 'success') failures.push(`ack was ${a.status} ${a.body}`);
    if ('silent' in step) {
      await sleep(DUPLICATE_WINDOW_MS);
      if (fake.sent.length > before) failures.push(`the bot answered ${step.who} while a human holds the conversation`);
      else console.log(`    (no bot reply: the conversation is with a human servicer now; service_state ${fake.serviceState(KF, step.user)})\n`);
      continue;
    }
    await fake.waitFor(() => fake.sent.length > before, REPLY_TIMEOUT_MS).catch(() => failures.push(`no reply to ${step.who}`));
    await sleep(DUPLICATE_WINDOW_MS); // any duplicate would show up here
    const replies = fake.sent.slice(before);
    for (const r of replies) console.log(`    [机器人 → ${step.who}] ${r.content ?? `(${r.msgtype})`}`);
    const note = deliveries > 1 ? `, WeCom delivered the callback ${deliveries}× at once` : '';
    const replyMs = replies[0] ? Math.round(replies[0].at - started) : NaN;
    const slow = slowest >= ACK_NOTE_MS ? ' (slow: this machine is busy)' : '';
    console.log(`    ack ${slowest.toFixed(1)} ms${slow} (sync_msg answers 200 ms late), reply after ${replyMs} ms${note}\n`);
    if (replies.length > 1) failures.push(`${replies.length} replies (duplicate) to ${step.who}`);
    const want = expectedText(step);
    const got = replies[0]?.content ?? null;
    if (want !== null && replies.length > 0 && got !== want) failures.push(`reply to ${step.who} was ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
  return failures;
}

function summarise(fake: FakeWecom, failures: string[]): void {
  const sends = fake.calls.filter((c) => c.api === 'send_msg' || c.api === 'send_msg_on_event');
  const pulls = fake.calls.filter((c) => c.api === 'sync_msg').length;
  console.log(`${STEPS.length} customer events (${ANSWERED} to answer) → ${fake.sent.length} replies accepted by the stand-in, ${pulls} sync_msg pulls, ${fake.gettokenCount()} gettoken\n`);
  if (sends.some((c) => c.errcode !== 0)) failures.push(`WeCom refused a send: ${JSON.stringify(sends.filter((c) => c.errcode !== 0).map((c) => c.errcode))}`);
  if (fake.sent.length !== ANSWERED) failures.push(`expected ${ANSWERED} replies, got ${fake.sent.length}`);
}
