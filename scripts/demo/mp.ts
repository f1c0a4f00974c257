/**
 * The demo's Official Account (公众号, OA) conversations. A local stand-in for the OA API (token, custom/send,
 * custom/typing) takes the place of api.weixin.qq.com; this part plays WeChat on the push side: every push is a
 * real safe-mode (encrypted) POST to /wechat/mp/callback with WeChat's 5 s deadline and retries, and every
 * passive reply is decrypted and its MsgSignature checked the way WeChat would (test/fakes/wechat-mp-push.ts,
 * independent of src/). Active mode (a verified account): follow → the welcome as the passive reply; a question →
 * `success` at once and the answer through custom/send; one MsgId delivered 3× → one answer; a menu click → its
 * text as the passive reply. Passive mode (an unverified / personal account, no AppSecret): the answer is the
 * encrypted passive reply and the OA API sees no call at all. Every step must get exactly one reply.
 */
import { type FakeMpApi, type InteractionKind } from '../../test/fakes/wechat-mp-api.js';
import { buildMpPush, deliverLikeWechat, eventMsg, openPassiveReply, textMsg, type MpCreds, type MpFields } from '../../test/fakes/wechat-mp-push.js';
import { ACK_NOTE_MS, DUPLICATE_WINDOW_MS, REPLY_TIMEOUT_MS, USE_ENV, sleep } from './child.js';

/** The demo account (not real credentials); the secret is what the OA API stand-in expects. */
export const MP: MpCreds = {
  appId: 'wxDEMO0a1b2c3d4e5f',
  token: 'DemoMpToken2026',
  encodingAesKey: 'ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut',
  ghId: 'gh_demo0a1b2c3d',
};
export const MP_SECRET = 'demo-mp-secret-not-real';
const MP_PATH = '/wechat/mp/callback';
const CLICK_REPLIES = { HOURS: '营业时间：每天 9:00-21:00' };
const ZHANG = { who: '粉丝 小张', openid: 'oDEMO_zhang_0000000000000001' };
const MEI = { who: '粉丝 阿梅', openid: 'oDEMO_amei_00000000000000002' };

/** The server variables of the OA channel in active mode (answers through custom/send) against `api`. */
export function mpActiveEnv(api: FakeMpApi): Record<string, string> {
  return {
    WECHAT_MP_APP_ID: MP.appId,
    WECHAT_MP_APP_SECRET: MP_SECRET,
    WECHAT_MP_TOKEN: MP.token,
    WECHAT_MP_ENCODING_AES_KEY: MP.encodingAesKey,
    WECHAT_MP_API_BASE_URL: api.url,
    WECHAT_MP_REPLY_MODE: 'active',
    WECHAT_MP_CLICK_REPLIES: JSON.stringify(CLICK_REPLIES),
  };
}

/** Passive mode: no AppSecret, OA only (kf blanked even if `--env` brings it), WeChat's real 5 s timings. */
export function mpPassiveEnv(api: FakeMpApi): Record<string, string> {
  const off = { WECOM_CORP_ID: '', WECOM_KF_SECRET: '', WECOM_TOKEN: '', WECOM_ENCODING_AES_KEY: '' };
  const timings = { WECHAT_MP_PASSIVE_HOLD_MS: '', WECHAT_MP_PASSIVE_LAST_MS: '' };
  return { ...mpActiveEnv(api), ...off, ...timings, WECHAT_MP_APP_SECRET: '', WECHAT_MP_REPLY_MODE: 'passive' };
}

interface MpStep {
  who: string;
  openid: string;
  /** what the customer did, as printed */
  said: string;
  kind: InteractionKind;
  fields: MpFields;
  /** how the reply must travel */
  via: 'passive' | 'custom/send';
  deliveries?: number;
  /** the exact reply text, when it does not come from the LLM (welcome, menu click) */
  exact?: string;
  /** an active-mode text push: answered `success` at once (its ack time is printed), the answer by custom/send */
  fastAck?: boolean;
  /** the customer's text: with the offline `echo` agent the reply must be exactly it */
  echo?: string;
}
export interface PartResult {
  failures: string[];
  expected: number;
  got: number;
}

/** OA active mode against the server at `url` (the same process as kf), `welcome` = its WELCOME_MESSAGE. */
export async function runMpActive(api: FakeMpApi, url: string, welcome: string): Promise<PartResult> {
  console.log('— Official Account (公众号), active mode: a verified account, same server, safe mode (encrypted) —\n');
  const q1 = '请问可以开发票吗？';
  const q2 = '退货多久能到账？';
  const steps: MpStep[] = [
    { ...ZHANG, said: '(follows the account)', kind: 'subscribe', fields: eventMsg(MP, ZHANG.openid, 'subscribe'), via: 'passive', exact: welcome },
    { ...ZHANG, said: q1, kind: 'message', fields: textMsg(MP, ZHANG.openid, q1), via: 'custom/send', fastAck: true, echo: q1 },
    { ...ZHANG, said: q2, kind: 'message', fields: textMsg(MP, ZHANG.openid, q2), via: 'custom/send', fastAck: true, deliveries: 3, echo: q2 },
    {
      ...ZHANG,
      said: '(taps the menu button 营业时间, EventKey HOURS)',
      kind: 'click',
      fields: eventMsg(MP, ZHANG.openid, 'CLICK', { EventKey: 'HOURS' }),
      via: 'passive',
      exact: CLICK_REPLIES.HOURS,
    },
  ];
  const r = await playAll(api, url, steps);
  const sends = api.calls.filter((c) => c.api === 'custom_send');
  const refused = sends.filter((c) => c.errcode !== 0).map((c) => c.errcode);
  if (refused.length > 0) r.failures.push(`the OA API refused a custom/send: ${JSON.stringify(refused)}`);
  const typing = api.typing.filter((t) => t.command === 'Typing').length;
  console.log(`${steps.length} OA events → ${r.got} replies (${r.got - api.sent.length} passive, ${api.sent.length} custom/send), access_token fetched ${api.tokenFetches()}×, ${typing} typing indicators\n`);
  return r;
}

/** OA passive mode against a second server at `url` whose OA API is `api` (which must see no call). */
export async function runMpPassive(api: FakeMpApi, url: string, pid: number | undefined): Promise<PartResult> {
  console.log(`— Official Account, passive mode: an unverified / personal account (no customer-service API, no AppSecret), server pid ${pid} —\n`);
  const q = '你们周末营业吗？';
  const step: MpStep = { ...MEI, said: q, kind: 'message', fields: textMsg(MP, MEI.openid, q), via: 'passive', echo: q };
  const r = await playAll(api, url, [step]);
  console.log('    (with a slow LLM, passive mode holds the delivery past WeChat\'s 5 s so that its retry gets the answer;');
  console.log('     if the third delivery is still too early it answers REPLY_STILL_THINKING and the answer comes with the next message)\n');
  if (api.calls.length > 0) r.failures.push(`passive mode called the OA API: ${api.calls.map((c) => c.api).join(', ')}`);
  console.log(`1 OA message → ${r.got} passive reply, ${api.calls.length} OA API calls (no access_token, no custom/send)\n`);
  return r;
}

async function playAll(api: FakeMpApi, url: string, steps: MpStep[]): Promise<PartResult> {
  const failures: string[] = [];
  let got = 0;
  for (const s of steps) got += await play(api, url, s, failures);
  return { failures, expected: steps.length, got };
}

/** Pushes one step (safe mode), prints it with its reply, records failures; returns the number of replies seen. */
async function play(api: FakeMpApi, url: string, s: MpStep, failures: string[]): Promise<number> {
  console.log(`[${s.who}] ${s.said}`);
  const before = api.sent.length;
  const started = Date.now();
  api.userInteracted(s.openid, s.kind); // WeChat knows the user just acted: opens the custom/send window
  const n = s.deliveries ?? 1;
  const results = await Promise.all(Array.from({ length: n }, () => deliverLikeWechat(url, MP_PATH, () => buildMpPush(MP, 'safe', s.fields))));
  const passive: string[] = [];
  let slowest = 0;
  let signatures = 'ok';
  for (const r of results) {
    if (!r.answered) {
      failures.push(`WeChat got no answer to ${s.who}: ${s.said} (${r.attempts.length} deliveries)`);
      continue;
    }
    const last = r.attempts[r.attempts.length - 1]!;
    slowest = Math.max(slowest, last.startedMs + last.ms);
    if (r.answered.body === 'success') continue;
    try {
      const reply = openPassiveReply(MP, r.answered.body, { encrypted: true, openid: s.openid });
      if (!reply.signatureOk) {
        signatures = 'BAD';
        failures.push(`bad MsgSignature on the passive reply to ${s.who}`);
      }
      passive.push(reply.fields.Content ?? `(${reply.fields.MsgType})`);
    } catch (e) {
      failures.push(`unreadable passive reply to ${s.who}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (s.via === 'custom/send') await api.waitFor(() => api.sent.length > before, REPLY_TIMEOUT_MS).catch(() => undefined);
  await sleep(DUPLICATE_WINDOW_MS); // any duplicate would show up here
  const sent = api.sent.slice(before);
  const texts = [...passive, ...sent.map((m) => m.content ?? `(${m.msgtype})`)];
  for (const t of texts) console.log(`    [机器人 → ${s.who}] ${t}`);
  const ways = [
    passive.length > 0 ? `passive reply (encrypted, MsgSignature ${signatures})` : '',
    sent.length > 0 ? `custom/send after ${Math.round(sent[0]!.at - started)} ms` : '',
  ].filter((w) => w !== '');
  const slow = s.fastAck && slowest >= ACK_NOTE_MS ? ' (slow: this machine is busy)' : '';
  const ack = passive.length < results.length ? `ack ${slowest.toFixed(1)} ms ('success')${slow}` : `answered in ${slowest.toFixed(1)} ms`;
  const how = ways.length > 0 ? ways.join(' + ') : 'no reply';
  const note = n > 1 ? `, WeChat delivered the same MsgId ${n}× at once` : '';
  console.log(`    ${ack} → ${how}${note}\n`);

  if (texts.length === 0) failures.push(`no reply to ${s.who}: ${s.said}`);
  if (texts.length > 1) failures.push(`${texts.length} replies (duplicate) to ${s.who}: ${s.said}`);
  if (texts.length > 0 && ways.length === 1 && !ways[0]!.startsWith(s.via)) failures.push(`reply to ${s.who} went by ${ways[0]}, expected ${s.via}`);
  const want = s.exact ?? (USE_ENV ? undefined : s.echo);
  if (want !== undefined && texts.length === 1 && texts[0] !== want) failures.push(`reply to ${s.who} was ${JSON.stringify(texts[0])}, expected ${JSON.stringify(want)}`);
  if (s.fastAck && passive.length > 0) failures.push(`active mode answered ${s.who} in the callback instead of 'success'`);
  return texts.length;
}
