import type { AxiosInstance } from 'axios';
import type { Replies } from '../../config.js';
import { errorSummary } from '../../error-summary.js';
import { WechatApiError } from '../../errors.js';
import { sanitizeMarkdown } from '../../format/sanitize-markdown.js';
import type { Metrics } from '../../metrics.js';
import type { AgentRouter } from '../../pipeline/agents.js';
import type { Answerer, PartLimits, PlannedReply } from '../../pipeline/answer.js';
import type { JobContext, JobHandler } from '../../pipeline/job-queue.js';
import { llmSettlement, statusOf } from '../../pipeline/job-recorder.js';
import type { BotMessageJob } from '../../pipeline/jobs.js';
import type { MediaTools } from '../../pipeline/media-tools.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';
import { customerKey } from '../../store/keys.js';
import type { ImageInput } from '../../llm/types.js';
import { botUserKey } from './inbound.js';
import { attachAnswerImages } from './answer-images.js';
import { aeskeyBytes, downloadBotMedia } from './media.js';
import { createSnapshotWriter } from './snapshot-writer.js';
import type { BotStreams, StreamSnapshot } from './streams.js';

/** A stream's content limit (wecom-aibot-protocol.md §4): UTF-8 bytes. */
export const BOT_STREAM_MAX_BYTES = 20480;
/** Past this (ms after the customer's message) an unfinished answer is closed with a note; WeCom stops at 6 min. */
export const BOT_HANDOVER_MS = 330_000;
/** Ends a stream closed at the handover while the agent is still writing. */
export const BOT_HANDOVER_NOTE = '（回答较长，完整内容稍后发送）';
const LIMITS: PartLimits = { maxBytes: BOT_STREAM_MAX_BYTES, maxParts: 1, markdown: true };

export interface BotHandlerDeps {
  agents: AgentRouter;
  metrics: Metrics;
  streams: BotStreams;
  replies: Replies;
  media: MediaTools;
  /** downloads of the bots' media URLs and posts to `response_url` (absolute URLs) */
  http: AxiosInstance;
  /** callback-mode bots' AES keys (media are encrypted with them); long-connection media carry their own `aeskey` */
  aesKeys: ReadonlyMap<string, Buffer>;
  recorder?: MessageRecorder;
  /** ms between provisional snapshot writes after the first (default 300) */
  throttleMs?: number;
  /** ms after the customer's message at which an unfinished stream is closed (default BOT_HANDOVER_MS; tests shorten) */
  handoverMs?: number;
}

/**
 * Answers one smart-bot message as a stream (interface.md "Smart bot"): the agent's text is written to the stream's
 * snapshot as it grows (first text at once, then throttled), the plan is saved once decided (a re-run never asks the
 * agent again), and the final snapshot (`finish:true`) carries the whole answer, or the fallback that replaces
 * whatever had shown. An answer not done ~5.5 min after the message is closed with a note and completed through
 * `response_url` (callback) or, long connection, `aibot_send_msg` by the connection's holder (`followUp`).
 */
export function createBotJobHandler(d: BotHandlerDeps): JobHandler {
  return { run: (ctx) => run(d, ctx), giveUp: (ctx, cause) => giveUp(d, ctx, cause) };
}

function place(p: BotMessageJob) {
  return { channel: 'bot' as const, account: p.botId, externalId: botUserKey(p.userid, p.chatid) };
}

async function run(d: BotHandlerDeps, ctx: JobContext): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'bot') throw new Error(`bot handler got a ${p.channel} job`);
  const agent = d.agents.for('bot', p.botId);
  const customer = customerKey('bot', p.botId, botUserKey(p.userid, p.chatid));
  const writer = createSnapshotWriter({
    streams: d.streams,
    streamId: p.streamId,
    botId: p.botId,
    createdAtMs: p.received_at_ms,
    throttleMs: d.throttleMs ?? 300,
    prepare: (text) => cutBytes(sanitizeMarkdown(text), BOT_STREAM_MAX_BYTES),
    onError: (e) => ctx.log.warn({ err: errorSummary(e) }, 'stream snapshot not written'),
  });
  d.metrics.botStreamsActive.inc();
  const handoverMs = d.handoverMs ?? BOT_HANDOVER_MS;
  let handedOver: Promise<void> | null = null;
  const handover = setTimeout(
    () => {
      const content = cutBytes(`${writer.shown === '' ? '' : `${writer.shown}\n\n`}${BOT_HANDOVER_NOTE}`, BOT_STREAM_MAX_BYTES);
      handedOver = writer.finish(content, undefined, { awaitingFollowUp: true }).catch((e: unknown) => ctx.log.warn({ err: errorSummary(e) }, 'stream not closed at the handover'));
      ctx.log.warn({ afterMs: handoverMs }, 'answer still being written at the stream window; closed with a note, the rest follows');
    },
    Math.max(0, p.received_at_ms + handoverMs - Date.now()),
  );
  try {
    let progress = ctx.progress;
    if (!progress) {
      const plan = await planBotReply(d, agent.answerer, p, customer, ctx, (text) => writer.update(text));
      progress = { parts: plan.parts, kind: plan.kind, sent: 0, effects: plan.effects, text: plan.text, ...(plan.llm ? { llm: plan.llm } : {}) };
      await ctx.saveProgress(progress);
    }
    if (progress.effects) {
      await agent.answerer.apply(customer, progress.effects);
      progress.effects = null;
      await ctx.saveProgress(progress);
    }
    clearTimeout(handover);
    const { content, images } = await attachAnswerImages(progress.parts[0] ?? '', d.media, ctx.signal);
    if (handedOver) await handedOver;
    const current = await d.streams.get(p.streamId);
    if (current?.finish && !current.awaitingFollowUp) {
      // A re-run after the final frame was written (a crash right after it): the customer has the answer.
      ctx.log.info('stream already finished; nothing more to write');
    } else if (current?.followUp) {
      ctx.log.info('follow-up already handed over; nothing more to write');
    } else if (handedOver || current?.awaitingFollowUp) await followUp(d, ctx, p, content, current);
    else await writer.finish(content, images);
    d.metrics.replies.inc({ channel: 'bot', kind: progress.kind });
    const rec = d.recorder;
    if (content) rec?.outbound({ ...place(p), partId: p.streamId, kind: progress.kind, content, status: 'sent', replyTo: p.msgid, agent: progress.llm?.agent ?? null });
    rec?.settle({ ...place(p), msgid: p.msgid }, { status: statusOf(progress.kind), ...llmSettlement(progress) });
  } finally {
    clearTimeout(handover);
    d.metrics.botStreamsActive.dec();
  }
}

/**
 * Decides the reply once: over the rate limit → told once; a type the bridge cannot pass on, or media the agent
 * cannot take → REPLY_UNSUPPORTED; otherwise the agent, streaming its text into the snapshot.
 */
async function planBotReply(
  d: BotHandlerDeps,
  answerer: Answerer,
  p: BotMessageJob,
  customer: string,
  ctx: JobContext,
  onText: (text: string) => void,
): Promise<PlannedReply> {
  const limited = await answerer.admit(customer, p.msgid);
  if (limited) return limited;
  const unsupported = (why: string): PlannedReply => {
    ctx.log.info({ msgtype: p.msgtype, why }, 'smart-bot message answered with REPLY_UNSUPPORTED');
    return { parts: [d.replies.unsupported], kind: 'fallback', effects: {}, text: d.replies.unsupported };
  };
  if (!p.supported) return unsupported('type not supported');
  let text = p.text;
  let images: ImageInput[] = [];
  if (p.images.length > 0) {
    if (!answerer.takesImages) return unsupported('agent takes no images');
    images = (await Promise.all(p.images.slice(0, 4).map((m) => downloadImage(d, p, m, ctx)))).filter((i): i is ImageInput => i !== null);
    if (images.length === 0) return unsupported('images could not be downloaded');
  }
  if (p.file) {
    if (!answerer.takesDescriptions) return unsupported('agent takes no descriptions');
    const file = await download(d, p, p.file, d.media.fileMaxBytes, ctx);
    const extracted = file ? await d.media.fileText(file, ctx.signal) : null;
    if (!file || !extracted) return unsupported('file is not PDF or text');
    text = `[客户发送了文件《${file.filename ?? '未命名文件'}》，以下是文件内容]\n${extracted.text}`;
  }
  if (p.quote && answerer.takesDescriptions) text = `[客户引用了这条消息：${p.quote}]\n${text}`;
  if (!text && images.length === 0) return unsupported('empty message');
  return answerer.answer({ customer, text, traceId: p.msgid, signal: ctx.signal, limits: LIMITS, onText, ...(images.length ? { images } : {}) });
}

async function downloadImage(d: BotHandlerDeps, p: BotMessageJob, m: { url: string; aeskey?: string }, ctx: JobContext): Promise<ImageInput | null> {
  const file = await download(d, p, m, d.media.maxBytes, ctx);
  return file ? d.media.asImage(file) : null;
}

/** @returns null (logged) when the media cannot be had: expired URL, too large, not decryptable */
async function download(d: BotHandlerDeps, p: BotMessageJob, m: { url: string; aeskey?: string }, maxBytes: number, ctx: JobContext) {
  const aesKey = m.aeskey ? aeskeyBytes(m.aeskey) : (d.aesKeys.get(p.botId) ?? null);
  if (!aesKey) {
    ctx.log.warn('smart-bot media without a usable key');
    return null;
  }
  try {
    return await downloadBotMedia(d.http, { url: m.url, aesKey, maxBytes, signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    if (e instanceof WechatApiError && e.retryable) throw e;
    ctx.log.warn({ err: errorSummary(e) }, 'smart-bot media not downloaded');
    return null;
  }
}

/**
 * The stream was closed before the answer was ready (the handover, or a crash past it): the answer goes out once
 * more by another way. Callback mode: `response_url` (one use, 1 hour); long connection: the snapshot's `followUp`,
 * which the connection's holder sends with `aibot_send_msg`.
 */
async function followUp(d: BotHandlerDeps, ctx: JobContext, p: BotMessageJob, content: string, current: StreamSnapshot | null): Promise<void> {
  if (!content) return;
  if (p.mode === 'websocket') {
    const base = current ?? { botId: p.botId, content: '', finish: true, createdAtMs: p.received_at_ms, seq: Date.now() };
    await d.streams.put(p.streamId, { ...base, seq: Date.now(), followUp: content });
    return;
  }
  if (!p.response_url) {
    ctx.log.error('answer ready after the stream closed, and the message had no response_url; the customer saw only the note');
    return;
  }
  const res = await d.http.post(p.response_url, { msgtype: 'markdown', markdown: { content } }, { signal: ctx.signal, validateStatus: () => true });
  const errcode = (res.data as { errcode?: number } | null)?.errcode ?? 0;
  if (res.status >= 400 || errcode !== 0) {
    d.metrics.wechatErrors.inc({ api: 'aibot/response', errcode: String(errcode || res.status) });
    ctx.log.error({ status: res.status, errcode }, 'response_url refused the rest of the answer');
    return;
  }
  ctx.log.info('rest of the answer sent through response_url');
  // Remembered, so a re-run of this job does not spend the one-use URL again.
  if (current) await d.streams.put(p.streamId, { ...current, seq: Date.now(), followUp: content });
}

/** Attempts ran out: the stream ends with REPLY_ON_ERROR rather than spinning until WeCom gives up. Never throws. */
async function giveUp(d: BotHandlerDeps, ctx: JobContext, cause: unknown): Promise<void> {
  const p = ctx.payload;
  if (p.channel !== 'bot') return;
  try {
    const text = d.agents.for('bot', p.botId).replyOnError;
    const current = await d.streams.get(p.streamId);
    if (current?.finish) return;
    await d.streams.put(p.streamId, { botId: p.botId, content: text, finish: true, createdAtMs: p.received_at_ms, seq: Date.now() });
    d.metrics.replies.inc({ channel: 'bot', kind: 'fallback' });
    d.recorder?.settle({ ...place(p), msgid: p.msgid }, { status: 'failed', ...llmSettlement(ctx.progress) });
    ctx.log.warn({ err: errorSummary(cause) }, 'attempts ran out; the stream ends with REPLY_ON_ERROR');
  } catch (e) {
    d.metrics.replies.inc({ channel: 'bot', kind: 'failed' });
    ctx.log.error({ err: errorSummary(e) }, 'attempts ran out and the stream could not be ended');
  }
}

/** The longest prefix of `s` within `maxBytes` UTF-8 bytes, never splitting a character. */
export function cutBytes(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  return Buffer.from(s, 'utf8').subarray(0, maxBytes).toString('utf8').replace(/\uFFFD+$/, '');
}

