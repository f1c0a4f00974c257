import type { LlmUse } from './recorder.js';
import type { ReplyEffects } from './answer.js';

/**
 * Durable job payloads (JSON in the store). A job id is `<channel>:<account>:<user>:<msgid>`: unique per
 * message within its account (the dedup key), and everything before the last `:` names the customer, which
 * is what orders a customer's jobs. Platform ids never contain `:`.
 */

interface KfJobBase {
  channel: 'kf';
  open_kfid: string;
  external_userid: string;
  msgid: string;
  /** unix seconds (from sync_msg) */
  send_time: number;
}

/** A customer's text message (kf `msgtype: text`, origin 3), also a click on a `msgmenu` item (`menu_id`). */
export interface KfTextJob extends KfJobBase {
  type: 'kf.text';
  content: string;
  menu_id?: string;
}

/** A customer's image or file: downloaded with `media/get` when the reply is planned (media_id lives 3 days). */
export interface KfMediaJob extends KfJobBase {
  type: 'kf.media';
  msgtype: 'image' | 'file';
  media_id: string;
}

/** A customer's link: the page is fetched (SSRF-safe, capped) when the reply is planned. */
export interface KfLinkJob extends KfJobBase {
  type: 'kf.link';
  title: string;
  desc: string;
  url: string;
}

/** A message the agent gets as a text description: a location, merged chat records (`merged_msg`). */
export interface KfDescribedJob extends KfJobBase {
  type: 'kf.described';
  msgtype: string;
  content: string;
}

/** A customer's message of a type the bridge cannot pass on yet: answered with REPLY_UNSUPPORTED. */
export interface KfUnsupportedJob extends KfJobBase {
  type: 'kf.unsupported';
  msgtype: string;
}

/** `enter_session` with a `welcome_code` (valid 20 s, single use) while a welcome text is configured. */
export interface KfWelcomeJob extends KfJobBase {
  type: 'kf.welcome';
  welcome_code: string;
}

/** How an OA job's answer leaves (decided per push by the route; `auto` may become `passive` on 48001). */
export type MpDelivery = 'active' | 'passive' | 'auto';

/**
 * A customer message on an Official Account. `content` is what the agent is asked: the text, a voice message's
 * `Recognition`, or a description of a location/link (`described`; the echo agent answers those with
 * REPLY_UNSUPPORTED). `content: null` = a type the bridge cannot pass on.
 */
export interface MpMessageJob {
  channel: 'mp';
  type: 'mp.message';
  /** the AppID (the account) */
  appid: string;
  /** FromUserName */
  openid: string;
  /** MsgId, a 64-bit integer kept as a string */
  msgid: string;
  msgtype: string;
  /** unix seconds (CreateTime) */
  create_time: number;
  content: string | null;
  described: boolean;
  /** an image message's MediaId (downloaded with `media/get` when the reply is planned) */
  media_id?: string;
  /** a link message's Url (its page is read when the reply is planned) */
  link_url?: string;
  delivery: MpDelivery;
  /** epoch ms at which the first delivery of this MsgId reached the bridge (what passive/auto timing counts from) */
  received_at_ms: number;
}

/**
 * A job whose attempts keep failing is retried (backoff 2 s doubling to 5 min) for this long after its hand-off,
 * then given up: REPLY_ON_ERROR is tried once more (the handler's `giveUp`) and `bridge_jobs_given_up_total`
 * counts it. An hour covers a WeCom or LLM outage worth waiting out; a customer who waited longer is better told.
 * (The platforms' own 48 h reply windows end a job sooner only when it was handed off late.)
 */
export const RETRY_WINDOW_MS = 3600_000;

/**
 * A second bound, on starts: crashes and shutdown hand-backs also start a job again, and a job that kills its
 * process every time must not loop for the whole hour.
 */
export const MAX_JOB_ATTEMPTS = 20;

/** Where a smart-bot message came from and how its answer streams (docs/smart-bot.md). */
export interface BotMessageJob {
  channel: 'bot';
  type: 'bot.message';
  /** the BotID (`aibotid`): the account */
  botId: string;
  /** how the answer leaves: snapshots for WeCom's refresh polls (callback) or frames on the long connection */
  mode: 'callback' | 'websocket';
  /** `from.userid` */
  userid: string;
  /** group chats only */
  chatid: string | null;
  msgid: string;
  /** the stream id every frame of this answer carries (derived from botId and msgid) */
  streamId: string;
  /** epoch ms at which the message reached the bridge: the 6-minute stream window counts from it */
  received_at_ms: number;
  /** `text`, `image`, `mixed`, `voice`, `file`, … as WeCom sent it */
  msgtype: string;
  /** what the agent is asked: the text (group @mention removed), a voice message's transcript, mixed texts */
  text: string;
  /** images to download (5-minute URLs); `aeskey` in long-connection mode, else the bot's EncodingAESKey decrypts */
  images: Array<{ url: string; aeskey?: string }>;
  /** a file to download and read (text, PDF) */
  file?: { url: string; aeskey?: string };
  /** the text of a quoted message, given to the agent as context */
  quote?: string;
  /** callback mode: the one-shot URL for an answer that outlives the stream window */
  response_url?: string;
  /** false: a type the bridge cannot pass on (REPLY_UNSUPPORTED) */
  supported: boolean;
}

/** Every kf job that answers a customer message (not the welcome). */
export type KfMessageJob = KfTextJob | KfMediaJob | KfLinkJob | KfDescribedJob | KfUnsupportedJob;

export type JobPayload = KfMessageJob | KfWelcomeJob | MpMessageJob | BotMessageJob;

/** Reply kinds, as counted in `bridge_replies_total{kind}`. */
export type ReplyKind = 'answer' | 'fallback' | 'command' | 'welcome';

/** What a job has done so far, saved as it goes so a re-run resumes instead of repeating. */
export interface JobProgress {
  /** the whole planned reply, fixed before the first part is sent (a re-run never asks the LLM again) */
  parts: string[];
  kind: ReplyKind;
  /** parts accepted by the platform so far */
  sent: number;
  /**
   * kf hand-off keyword: `transferred` once `service_state/trans` succeeded; `msg_code` is what it returned (null:
   * none, then the text goes through `send_msg`)
   */
  handoff?: { transferred: boolean; msg_code: string | null };
  /** store changes of the plan not yet applied (conversation state, pending rest); null once applied */
  effects?: ReplyEffects | null;
  /** the whole reply before the split (OA: kept for the customer's next message when it cannot go out now) */
  text?: string;
  /**
   * OA: how the answer leaves, once decided: `passive` (a held delivery answers with the first part), `active`
   * (custom/send), `kept` (the customer was told "still thinking"; the answer waits for their next message)
   */
  route?: 'passive' | 'active' | 'kept';
  /** when the LLM was asked: agent, latency, tokens (for the message log) */
  llm?: LlmUse;
}

/** `<channel>:<account>:<user>:<msgid>`, e.g. `kf:wkAbc:wmXyz:msg44chars`; none of the parts may contain `:`. */
export function jobId(channel: string, account: string, user: string, msgid: string): string {
  return `${channel}:${account}:${user}:${msgid}`;
}

/** The customer part of a job id (what orders a customer's jobs). */
export function orderKeyOf(id: string): string {
  return id.slice(0, id.lastIndexOf(':'));
}
