import type { Logger } from 'pino';
import { WechatApiError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import type { AgentRouter } from '../../pipeline/agents.js';
import type { JobContext, JobHandler } from '../../pipeline/job-queue.js';
import type { JobProgress, KfMessageJob, KfWelcomeJob } from '../../pipeline/jobs.js';
import { customerKey, keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import { planKfReply, type KfPlanDeps } from './plan.js';
import { imageAsText, imagePartOf } from '../../format/image-marker.js';
import { uploadAnswerImage } from '../../pipeline/answer-image.js';
import { outboundMsgid, replyTag, sendKfImage, sendKfOnEvent, sendKfText } from './send.js';
import { fetchServiceState, HUMAN_STATES, humanHolds, transferToHuman } from './service-state.js';
import { WELCOME_CODE_MAX_AGE_S } from './sync-select.js';
import { errorSummary } from '../../error-summary.js';
import { operatorHolds } from '../../pipeline/operator-hold.js';
import { bindRecorder, llmSettlement, statusOf, type JobRecorder } from '../../pipeline/job-recorder.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';

/** The job's recorder: rows of this message and its customer (kf identities are per corp: see recorder.ts). */
function recorderOf(d: KfHandlerDeps, p: { open_kfid: string; external_userid: string; msgid: string }): JobRecorder {
  return bindRecorder(d.recorder, { channel: 'kf', account: p.open_kfid, externalId: p.external_userid }, p.msgid);
}


export interface KfHandlerDeps extends KfPlanDeps {
  agents: AgentRouter;
  metrics: Metrics;
  store: Store;
  /** the message log's rows for this channel (default: none) */
  recorder?: MessageRecorder;
  /** HANDOFF_SERVICE_STATE / HANDOFF_SERVICER_USERID */
  handoff: { serviceState: 2 | 3; servicerUserid: string | null };
}

/**
 * Handles one kf job: plans the reply once (LLM, command, hand-off or fallback; see plan.ts) and stores the plan,
 * then sends the parts in order with deterministic msgids, recording each accepted part, so a re-run after a crash
 * sends only what is missing and never asks the LLM twice. While a human or the queue holds the conversation
 * (docs/configuration.md "Hand-off") the bot plans nothing and sends nothing. A reply cancelled by a recall or a
 * `msg_send_fail` stops before its next part. Refusals (95001, 95018, 45002 …) end the job as `failed` (logged,
 * counted; 95018 also asks `service_state/get`); transient failures are thrown for the queue to retry with backoff.
 * When the attempts run out, `giveUp` sends REPLY_ON_ERROR once more as a best effort.
 */
export function createKfJobHandler(d: KfHandlerDeps): JobHandler {
  return { run: (ctx) => run(d, ctx), giveUp: (ctx, cause) => giveUp(d, ctx, cause) };
}

async function run(d: KfHandlerDeps, ctx: JobContext): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'kf') throw new Error(`kf handler got a ${p.channel} job`);
  if (p.type === 'kf.welcome') return sendWelcome(d, ctx, p);
  const ageS = Date.now() / 1000 - p.send_time;
  const rec = recorderOf(d, p);
  if (ageS > KF_SEND_WINDOW_S) {
    d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
    rec.settle({ status: 'failed' });
    ctx.log.error({ attempts: ctx.attempts, ageS: Math.round(ageS) }, 'giving up on this message: past the send window');
    return;
  }
  let progress = ctx.progress;
  // The three checks before a first plan are independent reads: asked at once, one round trip instead of three.
  const [isCancelled, operatorHeld, humanHeld] = await Promise.all([
    cancelled(d, p, ctx.log),
    progress ? false : operatorHolds(d.store, customerKey('kf', p.open_kfid, p.external_userid)),
    progress ? false : humanHolds({ ...d, log: ctx.log }, p.open_kfid, p.external_userid, ctx.signal),
  ]);
  if (isCancelled) return rec.settle({ status: 'skipped' });
  if (!progress) {
    if (operatorHeld) {
      d.metrics.kfHumanHeld.inc();
      rec.settle({ status: 'skipped' });
      return ctx.log.info('an operator holds the conversation; the bot stays silent (no LLM call)');
    }
    if (humanHeld) {
      d.metrics.kfHumanHeld.inc();
      rec.settle({ status: 'skipped' });
      return ctx.log.info('a human holds the conversation; the bot stays silent (no LLM call)');
    }
    progress = await planKfReply(d, d.agents.for('kf', p.open_kfid).answerer, p, ctx.signal, ctx.log);
    await ctx.saveProgress(progress);
  }
  if (progress.effects) {
    await d.agents.for('kf', p.open_kfid).answerer.apply(customerKey('kf', p.open_kfid, p.external_userid), progress.effects);
    progress.effects = null;
    await ctx.saveProgress(progress);
  }
  if (progress.handoff) return handOff(d, ctx, p, progress);
  await sendParts(d, ctx, p, progress);
}

/**
 * The attempts ran out (WeCom kept failing): unless part of the reply already reached the customer, REPLY_ON_ERROR
 * goes out once more under its own deterministic msgid (a repeat of this very fallback counts as sent).
 */
async function giveUp(d: KfHandlerDeps, ctx: JobContext, cause: unknown): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'kf' || p.type === 'kf.welcome') return;
  const ageS = Date.now() / 1000 - p.send_time;
  const cancelledReply = await d.store.get(keys.kfReplyCancelled(replyTag(p.open_kfid, p.msgid))).catch(() => null);
  const rec = recorderOf(d, p);
  rec.settle({ status: 'failed', ...llmSettlement(ctx.progress) });
  if (ctx.progress && ctx.progress.parts.length > 0) {
    const parts = ctx.progress.parts;
    const last = cause instanceof WechatApiError ? cause : null;
    rec.failed({
      msgid: p.msgid,
      parts,
      sent: ctx.progress.sent,
      partIds: parts.map((_, i) => outboundMsgid(p.open_kfid, p.msgid, i)),
      errcode: last?.errcode ?? null,
      reason: cause instanceof Error ? cause.message : String(cause),
    });
  }
  if ((ctx.progress?.sent ?? 0) > 0 || ageS > KF_SEND_WINDOW_S || cancelledReply !== null) {
    d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
    ctx.log.error({ sent: ctx.progress?.sent ?? 0, ageS: Math.round(ageS) }, 'giving up on this message; no fallback sent');
    return;
  }
  const msgid = outboundMsgid(p.open_kfid, p.msgid, 'f');
  try {
    await sendKfText(
      d.api,
      { open_kfid: p.open_kfid, touser: p.external_userid, msgid, content: d.replies.onError },
      { signal: ctx.signal, mayHaveBeenSent: true, retries: 1 },
    );
    d.metrics.replies.inc({ channel: 'kf', kind: 'fallback' });
    rec.outbound({ partId: msgid, kind: 'fallback', content: d.replies.onError, status: 'sent' });
    ctx.log.warn('attempts ran out; REPLY_ON_ERROR sent instead');
  } catch (e) {
    d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
    rec.outbound({ partId: msgid, kind: 'fallback', content: d.replies.onError, status: 'failed', errcode: e instanceof WechatApiError ? e.errcode : null });
    ctx.log.error({ err: errorSummary(e) }, 'attempts ran out and the fallback could not be sent either');
  }
}

/** WeCom accepts replies for 48 h after the customer's message; past it, retrying is pointless. */
const KF_SEND_WINDOW_S = 48 * 3600;

async function cancelled(d: KfHandlerDeps, p: KfMessageJob, log: Logger): Promise<boolean> {
  const why = await d.store.get(keys.kfReplyCancelled(replyTag(p.open_kfid, p.msgid)));
  if (why) log.info({ why }, 'reply cancelled; nothing more is sent');
  return why !== null;
}

/**
 * The hand-off keyword (docs/configuration.md "Keywords", "Hand-off"): `service_state/trans` to the queue or a named
 * servicer, then REPLY_ON_HANDOFF through `send_msg_on_event` with the returned `msg_code` (through `send_msg` when
 * WeCom returned none). A refused transfer is told with REPLY_ON_ERROR: the customer must not wait for a human
 * who is not coming.
 */
async function handOff(d: KfHandlerDeps, ctx: JobContext, p: KfMessageJob, progress: JobProgress): Promise<void> {
  const handoff = progress.handoff!;
  if (!handoff.transferred) {
    try {
      const target = { open_kfid: p.open_kfid, external_userid: p.external_userid, service_state: d.handoff.serviceState, servicer_userid: d.handoff.servicerUserid };
      handoff.msg_code = await transferToHuman({ ...d, log: ctx.log }, target, ctx.signal);
    } catch (e) {
      if (ctx.signal.aborted || !isRefusal(e)) throw e;
      // A re-run after WeCom applied the move (a crash or a lost answer) is refused as an invalid transfer: the
      // conversation is with the queue or a servicer already, which is what the customer asked for.
      const now = await fetchServiceState({ ...d, log: ctx.log }, p.open_kfid, p.external_userid, ctx.signal);
      if (now !== null && HUMAN_STATES.has(now)) {
        ctx.log.info({ errcode: e.errcode, service_state: now }, 'transfer refused but the conversation is already with a human');
        handoff.transferred = true;
        await ctx.saveProgress(progress);
        return sendHandoffReply(d, ctx, p, progress);
      }
      ctx.log.error({ api: e.api, errcode: e.errcode }, 'hand-off refused by WeCom; telling the customer it failed');
      const failed: JobProgress = { parts: [d.replies.onError], kind: 'fallback', sent: 0, effects: null };
      await ctx.saveProgress(failed);
      return sendParts(d, ctx, p, failed);
    }
    handoff.transferred = true;
    await ctx.saveProgress(progress);
    ctx.log.info({ service_state: d.handoff.serviceState, msgCode: handoff.msg_code !== null }, 'conversation handed to a human');
  }
  return sendHandoffReply(d, ctx, p, progress);
}

/** REPLY_ON_HANDOFF, once (msgid label `h`): through the transfer's `msg_code`, else `send_msg`. */
async function sendHandoffReply(d: KfHandlerDeps, ctx: JobContext, p: KfMessageJob, progress: JobProgress): Promise<void> {
  const handoff = progress.handoff!;
  if (progress.sent > 0) return;
  const text = progress.parts[0] as string;
  const msgid = outboundMsgid(p.open_kfid, p.msgid, 'h');
  const opts = { signal: ctx.signal, mayHaveBeenSent: ctx.attempts > 1 };
  try {
    if (handoff.msg_code) await sendKfOnEvent(d.api, { code: handoff.msg_code, msgid, content: text }, opts);
    else await sendKfText(d.api, { open_kfid: p.open_kfid, touser: p.external_userid, msgid, content: text }, opts);
  } catch (e) {
    if (ctx.signal.aborted || !isRefusal(e)) throw e;
    recorderOf(d, p).outbound({ partId: msgid, kind: 'handoff', content: text, status: 'failed', errcode: e.errcode });
    recorderOf(d, p).settle({ status: 'failed' });
    return refused(d, ctx.log, e, 0, 1);
  }
  progress.sent = 1;
  await ctx.saveProgress(progress);
  recorderOf(d, p).outbound({ partId: msgid, kind: 'handoff', content: text, status: 'sent' });
  recorderOf(d, p).settle({ status: 'command' });
  d.metrics.replies.inc({ channel: 'kf', kind: 'command' });
  ctx.log.info({ via: handoff.msg_code ? 'send_msg_on_event' : 'send_msg' }, 'hand-off reply sent');
}

async function sendParts(d: KfHandlerDeps, ctx: JobContext, p: KfMessageJob, progress: JobProgress) {
  const rec = recorderOf(d, p);
  if (progress.parts.length === 0) {
    rec.settle({ status: 'skipped' });
    return ctx.log.info('no reply planned (customer over the rate limit)');
  }
  const first = progress.sent;
  for (let i = first; i < progress.parts.length; i++) {
    ctx.signal.throwIfAborted();
    // Before every part, the first too: a recall may have come while the LLM was answering.
    if (await cancelled(d, p, ctx.log)) return;
    const msgid = outboundMsgid(p.open_kfid, p.msgid, i);
    const to = { open_kfid: p.open_kfid, touser: p.external_userid, msgid };
    // A re-run may have crashed right after WeCom accepted this part but before we recorded it.
    const opts = { signal: ctx.signal, mayHaveBeenSent: i === first && ctx.attempts > 1 };
    try {
      const part = progress.parts[i] as string;
      const image = imagePartOf(part);
      const media_id = image ? await uploadAnswerImage(d.api, d.media, image, ctx.signal, ctx.log) : null;
      const outcome = media_id
        ? await sendKfImage(d.api, { ...to, media_id }, opts)
        : await sendKfText(d.api, { ...to, content: image ? imageAsText(image) : part }, opts);
      if (outcome === 'already_sent') ctx.log.info({ part: i, outMsgid: msgid }, 'part was already delivered');
      rec.outbound({ partId: msgid, kind: progress.kind, content: part, status: 'sent', agent: progress.llm?.agent ?? null });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      if (isRefusal(e)) {
        rec.outbound({ partId: msgid, kind: progress.kind, content: progress.parts[i] as string, status: 'failed', errcode: e.errcode });
        rec.settle({ status: 'failed', ...llmSettlement(progress) });
        return refused(d, ctx.log, e, i, progress.parts.length, p);
      }
      throw e;
    }
    progress.sent = i + 1;
    await ctx.saveProgress(progress);
  }
  d.metrics.replies.inc({ channel: 'kf', kind: progress.kind });
  rec.settle({ status: statusOf(progress.kind), ...llmSettlement(progress) });
  ctx.log.info({ parts: progress.parts.length, kind: progress.kind }, 'kf reply sent');
}

async function sendWelcome(d: KfHandlerDeps, ctx: JobContext, p: KfWelcomeJob): Promise<void> {
  const text = d.agents.for('kf', p.open_kfid).welcome;
  const age = Date.now() / 1000 - p.send_time;
  if (!text || age > WELCOME_CODE_MAX_AGE_S) {
    ctx.log.info({ ageS: Math.round(age) }, 'welcome not sent (no text or welcome_code too old)');
    return;
  }
  try {
    await sendKfOnEvent(
      d.api,
      { code: p.welcome_code, msgid: outboundMsgid(p.open_kfid, p.msgid, 'w'), content: text },
      { signal: ctx.signal, mayHaveBeenSent: ctx.attempts > 1, retries: 1 },
    );
    d.metrics.replies.inc({ channel: 'kf', kind: 'welcome' });
    d.recorder?.outbound({ channel: 'kf', account: p.open_kfid, externalId: p.external_userid, partId: outboundMsgid(p.open_kfid, p.msgid, 'w'), kind: 'welcome', content: text, status: 'sent' });
    ctx.log.info('kf welcome sent');
  } catch (e) {
    if (ctx.signal.aborted || !(e instanceof WechatApiError)) throw e;
    // The code lives 20 s and works once: any refusal or lasting failure is final.
    await refused(d, ctx.log, e, 0, 1);
  }
}

function isRefusal(e: unknown): e is WechatApiError {
  return e instanceof WechatApiError && !e.retryable;
}


/** 95018: the conversation is not the bot's (a human or the queue holds it, or the company is unverified). */
const SESSION_STATE_INVALID = 95018;

async function refused(d: KfHandlerDeps, log: Logger, e: WechatApiError, part: number, parts: number, p?: KfMessageJob): Promise<void> {
  d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
  log.warn({ api: e.api, errcode: e.errcode, part, parts }, 'WeCom refused the reply; not retrying');
  if (p && e.errcode === SESSION_STATE_INVALID) {
    // Learn who holds it, so the customer's next messages do not ask the LLM for answers that cannot be sent.
    const state = await fetchServiceState({ ...d, log }, p.open_kfid, p.external_userid, new AbortController().signal);
    log.info({ service_state: state }, 'asked WeCom who holds the conversation after 95018');
  }
}
