import type { Logger } from 'pino';
import type { Replies } from '../../config.js';
import { WechatApiError } from '../../errors.js';
import { KF_MAX_PARTS, KF_TEXT_MAX_BYTES } from '../../format/split.js';
import type { Metrics } from '../../metrics.js';
import type { PlannedReply } from '../../pipeline/answer.js';
import type { AgentRouter } from '../../pipeline/agents.js';
import type { JobContext, JobHandler } from '../../pipeline/job-queue.js';
import type { JobProgress, KfTextJob, KfUnsupportedJob, KfWelcomeJob } from '../../pipeline/jobs.js';
import { customerKey } from '../../store/keys.js';
import type { ApiClient } from '../../wechat-api/api-client.js';
import { outboundMsgid, sendKfOnEvent, sendKfText } from './send.js';
import { WELCOME_CODE_MAX_AGE_S } from './sync-select.js';

export interface KfHandlerDeps {
  api: ApiClient;
  agents: AgentRouter;
  replies: Replies;
  metrics: Metrics;
}

/**
 * Handles one kf job: plans the reply once (LLM, command or fallback) and stores the plan, then sends the
 * parts in order with deterministic msgids, recording each accepted part, so a re-run after a crash sends
 * only what is missing and never asks the LLM twice. Refusals (95001, 95018, 45002 …) end the job as
 * `failed` (logged, counted); transient failures are thrown for the queue to retry with backoff. When the attempts
 * run out, `giveUp` sends REPLY_ON_ERROR once more as a best effort.
 */
export function createKfJobHandler(d: KfHandlerDeps): JobHandler {
  return { run: (ctx) => run(d, ctx), giveUp: (ctx) => giveUp(d, ctx) };
}

async function run(d: KfHandlerDeps, ctx: JobContext): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'kf') throw new Error(`kf handler got a ${p.channel} job`);
  if (p.type === 'kf.welcome') return sendWelcome(d, ctx, p);
  const ageS = Date.now() / 1000 - p.send_time;
  if (ageS > KF_SEND_WINDOW_S) {
    d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
    ctx.log.error({ attempts: ctx.attempts, ageS: Math.round(ageS) }, 'giving up on this message: past the send window');
    return;
  }
  const progress = ctx.progress ?? (await planReply(d, ctx, p));
  if (progress.effects) {
    await d.agents.for('kf', p.open_kfid).answerer.apply(customerKey('kf', p.open_kfid, p.external_userid), progress.effects);
    progress.effects = null;
    await ctx.saveProgress(progress);
  }
  await sendParts(d, ctx, p, progress);
}

/**
 * The attempts ran out (WeCom kept failing): unless part of the reply already reached the customer, REPLY_ON_ERROR
 * goes out once more under its own deterministic msgid (a repeat of this very fallback counts as sent).
 */
async function giveUp(d: KfHandlerDeps, ctx: JobContext): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'kf' || p.type === 'kf.welcome') return;
  const ageS = Date.now() / 1000 - p.send_time;
  if ((ctx.progress?.sent ?? 0) > 0 || ageS > KF_SEND_WINDOW_S) {
    d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
    ctx.log.error({ sent: ctx.progress?.sent ?? 0, ageS: Math.round(ageS) }, 'giving up on this message; no fallback sent');
    return;
  }
  try {
    await sendKfText(
      d.api,
      { open_kfid: p.open_kfid, touser: p.external_userid, msgid: outboundMsgid(p.open_kfid, p.msgid, 'f'), content: d.replies.onError },
      { signal: ctx.signal, mayHaveBeenSent: true, retries: 1 },
    );
    d.metrics.replies.inc({ channel: 'kf', kind: 'fallback' });
    ctx.log.warn('attempts ran out; REPLY_ON_ERROR sent instead');
  } catch (e) {
    d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
    ctx.log.error({ err: e }, 'attempts ran out and the fallback could not be sent either');
  }
}

/** WeCom accepts replies for 48 h after the customer's message; past it, retrying is pointless. */
const KF_SEND_WINDOW_S = 48 * 3600;

async function planReply(d: KfHandlerDeps, ctx: JobContext, p: KfTextJob | KfUnsupportedJob): Promise<JobProgress> {
  const limits = { maxBytes: KF_TEXT_MAX_BYTES, maxParts: KF_MAX_PARTS };
  let plan: PlannedReply;
  if (p.type === 'kf.unsupported') {
    ctx.log.info({ msgtype: p.msgtype }, 'unsupported kf message type');
    plan = { parts: [d.replies.unsupported], kind: 'fallback', effects: {}, text: d.replies.unsupported };
  } else {
    const customer = customerKey('kf', p.open_kfid, p.external_userid);
    const { answerer } = d.agents.for('kf', p.open_kfid);
    plan = await answerer.answer({ customer, text: p.content, traceId: p.msgid, signal: ctx.signal, limits });
  }
  const progress: JobProgress = { parts: plan.parts, kind: plan.kind, sent: 0, effects: plan.effects };
  await ctx.saveProgress(progress);
  return progress;
}

async function sendParts(d: KfHandlerDeps, ctx: JobContext, p: KfTextJob | KfUnsupportedJob, progress: JobProgress) {
  if (progress.parts.length === 0) return ctx.log.info('no reply planned (customer over the rate limit)');
  const first = progress.sent;
  for (let i = first; i < progress.parts.length; i++) {
    ctx.signal.throwIfAborted();
    const msgid = outboundMsgid(p.open_kfid, p.msgid, i);
    try {
      const outcome = await sendKfText(
        d.api,
        { open_kfid: p.open_kfid, touser: p.external_userid, msgid, content: progress.parts[i] as string },
        // A re-run may have crashed right after WeCom accepted this part but before we recorded it.
        { signal: ctx.signal, mayHaveBeenSent: i === first && ctx.attempts > 1 },
      );
      if (outcome === 'already_sent') ctx.log.info({ part: i, outMsgid: msgid }, 'part was already delivered');
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      if (isRefusal(e)) return refused(d, ctx.log, e, i, progress.parts.length);
      throw e;
    }
    progress.sent = i + 1;
    await ctx.saveProgress(progress);
  }
  d.metrics.replies.inc({ channel: 'kf', kind: progress.kind });
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
    ctx.log.info('kf welcome sent');
  } catch (e) {
    if (ctx.signal.aborted || !(e instanceof WechatApiError)) throw e;
    // The code lives 20 s and works once: any refusal or lasting failure is final.
    refused(d, ctx.log, e, 0, 1);
  }
}

function isRefusal(e: unknown): e is WechatApiError {
  return e instanceof WechatApiError && !e.retryable;
}

function refused(d: KfHandlerDeps, log: Logger, e: WechatApiError, part: number, parts: number): void {
  d.metrics.replies.inc({ channel: 'kf', kind: 'failed' });
  log.warn({ api: e.api, errcode: e.errcode, part, parts }, 'WeCom refused the reply; not retrying');
}
