import { errorSummary } from '../../error-summary.js';
import { operatorHolds } from '../../pipeline/operator-hold.js';
import { bindRecorder, llmSettlement, statusOf, type JobRecorder } from '../../pipeline/job-recorder.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';
import type { Logger } from 'pino';
import type { Replies } from '../../config.js';
import { WechatApiError } from '../../errors.js';
import { OA_TEXT_MAX_BYTES } from '../../format/split.js';
import type { Metrics } from '../../metrics.js';
import type { ImageInput } from '../../llm/types.js';
import type { Answerer, PartLimits, PlannedReply } from '../../pipeline/answer.js';
import type { MediaTools } from '../../pipeline/media-tools.js';
import type { AgentRouter } from '../../pipeline/agents.js';
import type { JobContext, JobHandler } from '../../pipeline/job-queue.js';
import type { JobProgress, MpMessageJob } from '../../pipeline/jobs.js';
import { customerKey } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import type { ApiClient } from '../../wechat-api/api-client.js';
import type { AccountMode } from './account-mode.js';
import { imageAsText, imagePartOf } from '../../format/image-marker.js';
import { uploadAnswerImage } from '../../pipeline/answer-image.js';
import { MP_FINAL_ERRCODES, sendCustomImage, sendCustomText, startTyping } from './send.js';
import { claimSlot, passiveTooLateMs, type MpTimings, type Slot, type SlotWatch } from './slots.js';

export interface MpHandlerDeps {
  /** for sending: null in passive mode (no customer-service API) or without an AppSecret */
  api: ApiClient | null;
  /** for `media/get`: any account with its AppSecret, passive ones included */
  mediaApi: ApiClient | null;
  media: MediaTools;
  agents: AgentRouter;
  replies: Replies;
  metrics: Metrics;
  store: Store;
  slots: SlotWatch;
  mode: AccountMode;
  timings: MpTimings;
  /** the message log's rows for this channel (default: none) */
  recorder?: MessageRecorder;
}

/** The job's recorder: rows of this message and its follower. */
function recorderOf(d: MpHandlerDeps, p: MpMessageJob): JobRecorder {
  return bindRecorder(d.recorder, { channel: 'mp', account: p.appid, externalId: p.openid }, p.msgid);
}

/** The customer-service API sends for 48 h after the customer's message (docs/protocols.md OA §6). */
const MP_SEND_WINDOW_S = 48 * 3600;
/** A customer message allows 5 customer-service messages: 4 parts and a fifth with the continue hint. */
const ACTIVE_LIMITS: PartLimits = { maxBytes: OA_TEXT_MAX_BYTES, maxParts: 5 };
/** A passive reply is one message; the rest goes out on the customer's next messages. */
const PASSIVE_LIMITS: PartLimits = { maxBytes: OA_TEXT_MAX_BYTES, maxParts: 1 };

/**
 * Handles one OA message job: plans the reply once (LLM, keyword command or fallback; saved with the job so a
 * re-run never asks the LLM twice), then decides through the message's slot how it leaves (see slots.ts):
 * as the passive reply a held delivery serves, through custom/send (parts in order, each recorded as WeChat
 * accepts it), or kept for the customer's next message when the last delivery already said "still thinking".
 * 45015/45047/48001 end the sending without retry; in auto mode 48001 also switches the account to passive and
 * keeps the answer for the next message. Transient failures are thrown for the queue's backoff; when the attempts
 * run out, `giveUp` tells the customer REPLY_ON_ERROR as a best effort.
 */
export function createMpJobHandler(d: MpHandlerDeps): JobHandler {
  return { run: (ctx) => run(d, ctx), giveUp: (ctx, cause) => giveUp(d, ctx, cause) };
}

async function run(d: MpHandlerDeps, ctx: JobContext): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'mp') throw new Error(`mp handler got a ${p.channel} job`);
  const ageS = Date.now() / 1000 - p.create_time;
  const rec = recorderOf(d, p);
  if (ageS > MP_SEND_WINDOW_S) {
    d.metrics.replies.inc({ channel: 'mp', kind: 'failed' });
    rec.settle({ status: 'failed' });
    ctx.log.error({ attempts: ctx.attempts, ageS: Math.round(ageS) }, 'giving up on this message: past the send window');
    return;
  }
  const customer = customerKey('mp', p.appid, p.openid);
  // An operator holds the conversation (console reply or hand-off): the bot stays quiet, and an empty plan ends a held
  // passive delivery the way a rate-limited message does.
  const held = !ctx.progress && (await operatorHolds(d.store, customer));
  if (held) ctx.log.info('an operator holds the conversation; the bot stays silent (no LLM call)');
  const progress = ctx.progress ?? (held ? { parts: [], kind: 'fallback' as const, sent: 0, effects: null } : await planReply(d, ctx, p, customer));
  if (!progress.route) {
    progress.route = await decideRoute(d, ctx.id, p, progress);
    if (progress.route === 'kept') progress.effects = { ...progress.effects, rest: progress.text ?? null };
    await ctx.saveProgress(progress);
    d.slots.notify(ctx.id);
  }
  if (progress.effects) {
    await d.agents.for('mp', p.appid).answerer.apply(customer, progress.effects);
    progress.effects = null;
    await ctx.saveProgress(progress);
  }
  if (progress.parts.length === 0) {
    rec.settle({ status: 'skipped' });
    return ctx.log.info(held ? 'no reply: an operator holds the conversation' : 'no reply planned (customer over the rate limit)');
  }
  if (progress.route === 'active') return sendParts(d, ctx, p, progress, customer);
  if (progress.route === 'passive') {
    d.metrics.replies.inc({ channel: 'mp', kind: progress.kind });
    // The held delivery answers with it (or a retry does): WeChat takes it as it takes the HTTP response.
    rec.outbound({ partId: `${p.msgid}_0`, kind: progress.kind, content: progress.parts[0] ?? '', status: 'sent', agent: progress.llm?.agent ?? null });
  }
  // Kept: the customer was told "still thinking"; their next message fetches it and logs it as that message's answer.
  rec.settle({ status: statusOf(progress.kind), ...llmSettlement(progress) });
  ctx.log.info(
    { route: progress.route, kind: progress.kind },
    progress.route === 'passive' ? 'passive reply ready' : 'answer kept for the customer’s next message',
  );
}

/**
 * The attempts ran out: unless part of the answer already reached the customer, REPLY_ON_ERROR goes out through
 * custom/send, or (no API: passive only) waits as the passive reply to the customer's next message.
 */
async function giveUp(d: MpHandlerDeps, ctx: JobContext, cause: unknown): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'mp') return;
  const ageS = Date.now() / 1000 - p.create_time;
  const rec = recorderOf(d, p);
  rec.settle({ status: 'failed', ...llmSettlement(ctx.progress) });
  if (ctx.progress && ctx.progress.parts.length > 0) {
    rec.failed({
      msgid: p.msgid,
      parts: ctx.progress.parts,
      sent: ctx.progress.sent,
      partIds: [],
      errcode: cause instanceof WechatApiError ? cause.errcode : null,
      reason: cause instanceof Error ? cause.message : String(cause),
    });
  }
  if ((ctx.progress?.sent ?? 0) > 0 || ageS > MP_SEND_WINDOW_S) {
    d.metrics.replies.inc({ channel: 'mp', kind: 'failed' });
    ctx.log.error({ sent: ctx.progress?.sent ?? 0, ageS: Math.round(ageS) }, 'giving up on this message; no fallback sent');
    return;
  }
  try {
    if (d.api) await sendCustomText(d.api, { touser: p.openid, content: d.replies.onError }, ctx.signal);
    else await d.agents.for('mp', p.appid).answerer.apply(customerKey('mp', p.appid, p.openid), { rest: d.replies.onError });
    d.metrics.replies.inc({ channel: 'mp', kind: 'fallback' });
    if (d.api) rec.outbound({ partId: `${p.msgid}_f`, kind: 'fallback', content: d.replies.onError, status: 'sent' });
    ctx.log.warn({ active: d.api !== null }, 'attempts ran out; REPLY_ON_ERROR given instead');
  } catch (e) {
    d.metrics.replies.inc({ channel: 'mp', kind: 'failed' });
    ctx.log.error({ err: errorSummary(e) }, 'attempts ran out and the fallback could not be given either');
  }
}

async function planReply(d: MpHandlerDeps, ctx: JobContext, p: MpMessageJob, customer: string): Promise<JobProgress> {
  const passive = p.delivery === 'passive';
  // Images go out as image messages only on an active account: an auto-mode answer may still become a passive reply.
  const limits = passive ? PASSIVE_LIMITS : p.delivery === 'active' ? { ...ACTIVE_LIMITS, images: true } : ACTIVE_LIMITS;
  let plan: PlannedReply;
  const { answerer } = d.agents.for('mp', p.appid);
  // Before any download or page read: a customer over the limit costs one store call.
  const limited = await answerer.admit(customer, p.msgid);
  const input = limited ? null : await agentInput(d, ctx, p, answerer);
  if (limited) {
    plan = limited;
  } else if (!input) {
    const text = d.replies.unsupported;
    plan = { parts: [text], kind: 'fallback', effects: {}, text };
  } else {
    const typing = { stop: () => {} };
    try {
      plan = await answerer.answer({
        customer,
        text: input.text,
        ...(input.images ? { images: input.images } : {}),
        traceId: p.msgid,
        signal: ctx.signal,
        limits,
        anyMessageContinues: passive,
        onLlmStart: () => {
          if (d.api && !passive) Object.assign(typing, startTyping(d.api, p.openid, ctx.log));
        },
      });
    } finally {
      typing.stop();
    }
  }
  const progress: JobProgress = { parts: plan.parts, kind: plan.kind, sent: 0, effects: plan.effects, text: plan.text, ...(plan.llm ? { llm: plan.llm } : {}) };
  await ctx.saveProgress(progress);
  return progress;
}

/**
 * What the agent is asked: the text; an image (downloaded with `media/get`, for agents that take images); a
 * link's description plus its page (read SSRF-safe, for agents that take descriptions); or null → REPLY_UNSUPPORTED.
 * @throws WechatApiError when the download failed transiently (the job retries)
 */
async function agentInput(
  d: MpHandlerDeps,
  ctx: JobContext,
  p: MpMessageJob,
  answerer: Answerer,
): Promise<{ text: string; images?: ImageInput[] } | null> {
  const no = (why: string) => {
    ctx.log.info({ msgtype: p.msgtype, why }, 'message not passed on; answering REPLY_UNSUPPORTED');
    return null;
  };
  if (p.content === null) return no('type not supported');
  if (p.media_id) {
    if (!answerer.takesImages) return no('agent takes no images');
    if (!d.mediaApi) return no('no AppSecret to download media with');
    try {
      const image = d.media.asImage(await d.mediaApi.getMedia(p.media_id, d.media.maxBytes, ctx.signal));
      return image ? { text: '', images: [image] } : no('not an image');
    } catch (e) {
      if (ctx.signal.aborted || !(e instanceof WechatApiError) || e.retryable) throw e;
      return no(`media/get refused (${e.errcode ?? e.status})`);
    }
  }
  if (p.described && !answerer.takesDescriptions) return no('agent takes no descriptions');
  if (p.link_url) {
    const page = await d.media.readPage(p.link_url, ctx.signal);
    if (page) return { text: `${p.content}\n\n页面内容：\n${page.text}` };
  }
  return { text: p.content };
}

/**
 * Claims the message's slot (see slots.ts). Passive: the reply, or GAVE_UP when no delivery can carry it any more
 * (the job finished after WeChat's last delivery: a crash, a backlog). Auto: the reply for a one-part answer while
 * the first delivery may still hold, else ACTIVE. Whatever slot wins decides, whoever wrote it.
 */
async function decideRoute(d: MpHandlerDeps, id: string, p: MpMessageJob, progress: JobProgress): Promise<'passive' | 'active' | 'kept'> {
  if (p.delivery === 'active') return 'active';
  if (progress.parts.length === 0) return (await claimSlot(d.store, id, 'NONE')) === 'NONE' ? 'passive' : 'kept';
  const late = Date.now() - (p.received_at_ms ?? p.create_time * 1000) > passiveTooLateMs(d.timings, p.delivery);
  const reply: Slot = { reply: progress.parts[0] ?? '' };
  const wanted: Slot = p.delivery === 'passive' ? (late ? 'GAVE_UP' : reply) : late || progress.parts.length > 1 ? 'ACTIVE' : reply;
  const slot = await claimSlot(d.store, id, wanted);
  if (slot === 'GAVE_UP') return 'kept';
  if (slot === 'ACTIVE') return d.api ? 'active' : 'kept';
  if (slot === 'NONE') return 'passive';
  return 'passive';
}

async function sendParts(d: MpHandlerDeps, ctx: JobContext, p: MpMessageJob, progress: JobProgress, customer: string) {
  if (!d.api) throw new Error('active reply without an API client');
  const rec = recorderOf(d, p);
  for (let i = progress.sent; i < progress.parts.length; i++) {
    ctx.signal.throwIfAborted();
    const part = progress.parts[i] as string;
    try {
      const image = imagePartOf(part);
      const media_id = image ? await uploadAnswerImage(d.api, d.media, image, ctx.signal, ctx.log) : null;
      if (media_id) await sendCustomImage(d.api, { touser: p.openid, media_id }, ctx.signal);
      else await sendCustomText(d.api, { touser: p.openid, content: image ? imageAsText(image) : part }, ctx.signal);
    } catch (e) {
      if (ctx.signal.aborted || !(e instanceof WechatApiError) || e.retryable) throw e;
      rec.outbound({ partId: `${p.msgid}_${i}`, kind: progress.kind, content: part, status: 'failed', errcode: e.errcode });
      rec.settle({ status: 'failed', ...llmSettlement(progress) });
      return refused(d, ctx.log, e, { p, progress, part: i, customer });
    }
    rec.outbound({ partId: `${p.msgid}_${i}`, kind: progress.kind, content: part, status: 'sent', agent: progress.llm?.agent ?? null });
    progress.sent = i + 1;
    await ctx.saveProgress(progress);
  }
  d.metrics.replies.inc({ channel: 'mp', kind: progress.kind });
  rec.settle({ status: statusOf(progress.kind), ...llmSettlement(progress) });
  ctx.log.info({ parts: progress.parts.length, kind: progress.kind }, 'mp reply sent');
}

async function refused(
  d: MpHandlerDeps,
  log: Logger,
  e: WechatApiError,
  c: { p: MpMessageJob; progress: JobProgress; part: number; customer: string },
): Promise<void> {
  d.metrics.replies.inc({ channel: 'mp', kind: 'failed' });
  const final = e.errcode !== null && MP_FINAL_ERRCODES.has(e.errcode);
  log.warn({ api: e.api, errcode: e.errcode, part: c.part, parts: c.progress.parts.length, final }, 'WeChat refused the reply; not retrying');
  if (e.errcode === 48001 && d.mode.configured === 'auto') {
    await d.mode.switchToPassive();
    // Nothing reached the customer: their next message gets this answer as its passive reply.
    if (c.progress.sent === 0 && c.progress.text) await d.agents.for('mp', c.p.appid).answerer.apply(c.customer, { rest: c.progress.text });
  }
}
