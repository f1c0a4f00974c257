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

/** A customer's text message (kf `msgtype: text`, origin 3). */
export interface KfTextJob extends KfJobBase {
  type: 'kf.text';
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

export type JobPayload = KfTextJob | KfUnsupportedJob | KfWelcomeJob;

/** Reply kinds, as counted in `bridge_replies_total{kind}`. */
export type ReplyKind = 'answer' | 'fallback' | 'command' | 'welcome';

/** What a job has done so far, saved as it goes so a re-run resumes instead of repeating. */
export interface JobProgress {
  /** the whole planned reply, fixed before the first part is sent (a re-run never asks the LLM again) */
  parts: string[];
  kind: ReplyKind;
  /** parts accepted by the platform so far */
  sent: number;
  /** store changes of the plan not yet applied (conversation state, pending rest); null once applied */
  effects?: ReplyEffects | null;
}

/** `<channel>:<account>:<user>:<msgid>`, e.g. `kf:wkAbc:wmXyz:msg44chars`; none of the parts may contain `:`. */
export function jobId(channel: string, account: string, user: string, msgid: string): string {
  return `${channel}:${account}:${user}:${msgid}`;
}

/** The customer part of a job id (what orders a customer's jobs). */
export function orderKeyOf(id: string): string {
  return id.slice(0, id.lastIndexOf(':'));
}
