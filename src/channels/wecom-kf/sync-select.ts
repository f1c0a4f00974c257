import { jobId, type JobPayload } from '../../pipeline/jobs.js';
import { describeLocation, flattenMergedMsg } from './describe.js';

/** One `msg_list` item of `kf/sync_msg` (docs/protocols.md kf §2.4–2.5); only the fields we read. */
export interface SyncItem {
  msgid?: string;
  open_kfid?: string;
  external_userid?: string;
  /** unix seconds */
  send_time?: number;
  /** 3 customer, 4 system event, 5 servicer via the WeCom client */
  origin?: number;
  msgtype?: string;
  text?: { content?: string; menu_id?: string };
  image?: { media_id?: string };
  file?: { media_id?: string };
  location?: { latitude?: unknown; longitude?: unknown; name?: unknown; address?: unknown };
  link?: { title?: string; desc?: string; url?: string; pic_url?: string };
  merged_msg?: { title?: unknown; item?: unknown };
  event?: {
    event_type?: string;
    open_kfid?: string;
    external_userid?: string;
    welcome_code?: string;
    /** session_status_change: 1 taken from the queue, 2 transferred, 3 ended, 4 reopened by a servicer */
    change_type?: number;
    /** user_recall_msg */
    recall_msgid?: string;
    /** msg_send_fail: one of our outbound msgids */
    fail_msgid?: string;
    fail_type?: number;
  };
}

/** An event that changes what the bridge knows or does (docs/protocols.md kf §2.5), applied by the pull. */
export type KfEvent =
  | { type: 'session_status_change'; open_kfid: string; external_userid: string; change_type: number }
  | { type: 'user_recall_msg'; open_kfid: string; external_userid: string; recall_msgid: string }
  | { type: 'msg_send_fail'; open_kfid: string; external_userid: string; fail_msgid: string; fail_type: number | null };

/** A welcome_code is valid for 20 s and single use (kf §3.2). */
export const WELCOME_CODE_MAX_AGE_S = 20;

export interface SelectContext {
  /** unix seconds */
  nowS: number;
  /** no stored cursor: answer only messages younger than `coldStartMaxAgeS` */
  coldStart: boolean;
  coldStartMaxAgeS: number;
  maxMessageAgeS: number;
  /** a welcome text is configured */
  welcomeEnabled: boolean;
}

export type Selection =
  | { action: 'job'; id: string; payload: JobPayload }
  | { action: 'event'; msgid: string; event: KfEvent }
  | { action: 'skip'; reason: string; msgid: string; detail?: string };

/**
 * Decides what to do with one pulled item: customer messages (origin 3) within the age limits become jobs
 * (text → LLM; other types → REPLY_UNSUPPORTED); `enter_session` with a fresh `welcome_code` becomes a welcome
 * job when a welcome is configured; servicer messages (origin 5) and other events are never answered.
 * Ages follow docs/configuration.md "Ages": age = now − send_time; skipped when age > the limit; events are not
 * skipped for age but a welcome_code older than 20 s is not used.
 */
export function selectItem(item: SyncItem, ctx: SelectContext): Selection {
  const msgid = typeof item.msgid === 'string' ? item.msgid : '';
  if (!msgid) return { action: 'skip', reason: 'malformed', msgid, detail: 'no msgid' };
  const sendTime = typeof item.send_time === 'number' ? item.send_time : Number(item.send_time ?? NaN);
  const age = ctx.nowS - sendTime;

  if (item.msgtype === 'event') return selectEvent(item, msgid, sendTime, age, ctx);
  if (item.origin !== 3) return { action: 'skip', reason: item.origin === 5 ? 'servicer' : 'not_customer', msgid };

  const open_kfid = item.open_kfid ?? '';
  const external_userid = item.external_userid ?? '';
  if (!open_kfid || !external_userid || !Number.isFinite(sendTime)) {
    return { action: 'skip', reason: 'malformed', msgid, detail: 'missing open_kfid, external_userid or send_time' };
  }
  const limit = ctx.coldStart ? ctx.coldStartMaxAgeS : ctx.maxMessageAgeS;
  if (age > limit) return { action: 'skip', reason: ctx.coldStart ? 'cold_start_old' : 'too_old', msgid };

  const base = { channel: 'kf' as const, open_kfid, external_userid, msgid, send_time: sendTime };
  const id = jobId('kf', open_kfid, external_userid, msgid);
  return { action: 'job', id, payload: messagePayload(item, base) };
}

/**
 * What a customer message becomes (docs/configuration.md / issue "Other inbound types"): text (menu clicks included) goes
 * to the agent; images and files are downloaded when planned; links are fetched; locations and merged chat records
 * become descriptions; anything else (voice without recognition, video, cards, mini programs…) is unsupported.
 */
function messagePayload(
  item: SyncItem,
  base: { channel: 'kf'; open_kfid: string; external_userid: string; msgid: string; send_time: number },
): JobPayload {
  const type = String(item.msgtype ?? 'unknown');
  if (type === 'text' && typeof item.text?.content === 'string') {
    const menu = item.text.menu_id ? { menu_id: item.text.menu_id } : {};
    return { ...base, type: 'kf.text', content: item.text.content, ...menu };
  }
  if ((type === 'image' || type === 'file') && item[type]?.media_id) {
    return { ...base, type: 'kf.media', msgtype: type, media_id: item[type].media_id };
  }
  if (type === 'link' && typeof item.link?.url === 'string') {
    return { ...base, type: 'kf.link', url: item.link.url, title: item.link.title ?? '', desc: item.link.desc ?? '' };
  }
  if (type === 'location' && item.location) return { ...base, type: 'kf.described', msgtype: type, content: describeLocation(item.location) };
  if (type === 'merged_msg' && item.merged_msg) {
    return { ...base, type: 'kf.described', msgtype: type, content: flattenMergedMsg(item.merged_msg) };
  }
  return { ...base, type: 'kf.unsupported', msgtype: type };
}

function selectEvent(item: SyncItem, msgid: string, sendTime: number, age: number, ctx: SelectContext): Selection {
  const ev = item.event ?? {};
  const type = ev.event_type ?? 'unknown';
  const ids = { open_kfid: ev.open_kfid ?? item.open_kfid ?? '', external_userid: ev.external_userid ?? item.external_userid ?? '' };
  if (type === 'session_status_change' && ids.open_kfid && ids.external_userid && Number.isInteger(Number(ev.change_type))) {
    return { action: 'event', msgid, event: { type, ...ids, change_type: Number(ev.change_type) } };
  }
  if (type === 'user_recall_msg' && ids.open_kfid && ev.recall_msgid) {
    return { action: 'event', msgid, event: { type, ...ids, recall_msgid: ev.recall_msgid } };
  }
  if (type === 'msg_send_fail' && ids.open_kfid && ev.fail_msgid) {
    const failType = Number.isInteger(Number(ev.fail_type)) ? Number(ev.fail_type) : null;
    return { action: 'event', msgid, event: { type, ...ids, fail_msgid: ev.fail_msgid, fail_type: failType } };
  }
  if (type !== 'enter_session' || !ev.welcome_code) return { action: 'skip', reason: 'event', msgid, detail: type };
  if (!ctx.welcomeEnabled) return { action: 'skip', reason: 'event', msgid, detail: 'enter_session (no welcome configured)' };
  if (!(age <= WELCOME_CODE_MAX_AGE_S)) return { action: 'skip', reason: 'welcome_code_expired', msgid };
  const open_kfid = ev.open_kfid ?? item.open_kfid ?? '';
  const external_userid = ev.external_userid ?? item.external_userid ?? '';
  if (!open_kfid || !external_userid) return { action: 'skip', reason: 'malformed', msgid, detail: 'event without ids' };
  return {
    action: 'job',
    id: jobId('kf', open_kfid, external_userid, msgid),
    payload: {
      channel: 'kf',
      type: 'kf.welcome',
      open_kfid,
      external_userid,
      msgid,
      send_time: sendTime,
      welcome_code: ev.welcome_code,
    },
  };
}
