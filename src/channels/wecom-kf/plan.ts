import type { Logger } from 'pino';
import type { Replies } from '../../config.js';
import { WechatApiError } from '../../errors.js';
import { KF_MAX_PARTS, KF_TEXT_MAX_BYTES } from '../../format/split.js';
import type { Answerer, PlannedReply } from '../../pipeline/answer.js';
import type { JobProgress, KfMessageJob } from '../../pipeline/jobs.js';
import { matchesKeyword } from '../../pipeline/keywords.js';
import { describeLink } from '../../pipeline/describe-link.js';
import type { MediaTools } from '../../pipeline/media-tools.js';
import { customerKey } from '../../store/keys.js';
import type { ApiClient } from '../../wechat-api/api-client.js';

export interface KfPlanDeps {
  api: ApiClient;
  replies: Replies;
  /** HANDOFF_KEYWORDS */
  handoffKeywords: readonly string[];
  media: MediaTools;
}

const LIMITS = { maxBytes: KF_TEXT_MAX_BYTES, maxParts: KF_MAX_PARTS, images: true };

/**
 * Decides the whole reply to one kf customer message, once (the caller saves it before anything is sent):
 * - a hand-off keyword → the hand-off (`progress.handoff`), never the LLM;
 * - text and menu clicks → the agent;
 * - an image → downloaded and given to agents that take images, else REPLY_UNSUPPORTED;
 * - a PDF/text file → its text, a link → its page's title and text, a location or merged chat records → a
 *   description, for agents that take descriptions (not `echo`, which answers them with REPLY_UNSUPPORTED);
 * - anything else → REPLY_UNSUPPORTED (logged).
 * Past RATE_LIMIT_PER_CUSTOMER_PER_MIN (checked after the hand-off keyword, before any download) the customer is
 * told once and the rest of the minute gets no reply.
 * @throws the signal's reason when aborted; WechatApiError when a download failed transiently (the job retries)
 */
export async function planKfReply(d: KfPlanDeps, answerer: Answerer, p: KfMessageJob, signal: AbortSignal, log: Logger): Promise<JobProgress> {
  if (p.type === 'kf.text' && matchesKeyword(p.content, d.handoffKeywords)) {
    return { parts: [d.replies.onHandoff], kind: 'command', sent: 0, effects: null, handoff: { transferred: false, msg_code: null } };
  }
  const customer = customerKey('kf', p.open_kfid, p.external_userid);
  // Before any download or parse: a customer over the limit must not make us fetch and read their links and files.
  const limited = await answerer.admit(customer, p.msgid);
  if (limited) return { parts: limited.parts, kind: limited.kind, sent: 0, effects: limited.effects };
  const ask = (text: string, images?: PlannedReplyImages) =>
    answerer.answer({ customer, text, traceId: p.msgid, signal, limits: LIMITS, images });
  const unsupported = (why: string, detail: Record<string, unknown> = {}): PlannedReply => {
    log.info({ msgtype: msgtypeOf(p), why, ...detail }, 'kf message answered with REPLY_UNSUPPORTED');
    return { parts: [d.replies.unsupported], kind: 'fallback', effects: {}, text: d.replies.unsupported };
  };

  let plan: PlannedReply;
  switch (p.type) {
    case 'kf.text':
      if (p.menu_id) log.info({ menu_id: p.menu_id }, 'menu item clicked');
      plan = await ask(p.content);
      break;
    case 'kf.unsupported':
      plan = unsupported('type not supported');
      break;
    case 'kf.described':
      plan = answerer.takesDescriptions ? await ask(p.content) : unsupported('agent takes no descriptions');
      break;
    case 'kf.link': {
      if (!answerer.takesDescriptions) {
        plan = unsupported('agent takes no descriptions');
        break;
      }
      const page = await d.media.readPage(p.url, signal);
      plan = await ask(describeLink(p, page));
      break;
    }
    case 'kf.media':
      plan = await planMedia(d, answerer, p, signal, ask, unsupported);
      break;
  }
  return { parts: plan.parts, kind: plan.kind, sent: 0, effects: plan.effects, ...(plan.llm ? { llm: plan.llm } : {}) };
}

type PlannedReplyImages = Parameters<Answerer['answer']>[0]['images'];

async function planMedia(
  d: KfPlanDeps,
  answerer: Answerer,
  p: Extract<KfMessageJob, { type: 'kf.media' }>,
  signal: AbortSignal,
  ask: (text: string, images?: PlannedReplyImages) => Promise<PlannedReply>,
  unsupported: (why: string, detail?: Record<string, unknown>) => PlannedReply,
): Promise<PlannedReply> {
  const wanted = p.msgtype === 'image' ? answerer.takesImages : answerer.takesDescriptions;
  if (!wanted) return unsupported(p.msgtype === 'image' ? 'agent takes no images' : 'agent takes no descriptions');
  let file;
  try {
    // Pictures up to MEDIA_MAX_BYTES; files (PDF, text) up to FILE_MAX_BYTES: what a customer may make us read.
    file = await d.api.getMedia(p.media_id, p.msgtype === 'image' ? d.media.maxBytes : d.media.fileMaxBytes, signal);
  } catch (e) {
    if (signal.aborted || !(e instanceof WechatApiError) || e.retryable) throw e;
    // Expired (media lives 3 days), too large, or refused: the customer is told rather than left waiting.
    return unsupported('media/get refused', { errcode: e.errcode, status: e.status });
  }
  if (p.msgtype === 'image') {
    const image = d.media.asImage(file);
    return image ? ask('', [image]) : unsupported('not an image', { contentType: file.contentType });
  }
  const extracted = await d.media.fileText(file, signal);
  if (!extracted) return unsupported('file is not PDF or text', { contentType: file.contentType });
  const name = file.filename ?? '未命名文件';
  return ask(`[客户发送了文件《${name}》，以下是文件内容]\n${extracted.text}`);
}

function msgtypeOf(p: KfMessageJob): string {
  return 'msgtype' in p ? p.msgtype : p.type.slice(3);
}
