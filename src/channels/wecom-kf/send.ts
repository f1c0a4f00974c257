import { createHash } from 'node:crypto';
import pRetry from 'p-retry';
import { WechatApiError } from '../../errors.js';
import type { ApiClient } from '../../wechat-api/api-client.js';

/**
 * WeCom refuses a repeated outbound msgid; the exact errcode for a repeat is not published (our fake answers
 * 40058, "invalid parameter", the code WeCom uses for msgid problems). A refusal with one of these codes on a
 * RE-send of a part we may already have delivered means "already sent"; on a first send it is a real error.
 */
export const DUPLICATE_MSGID_ERRCODES: ReadonlySet<number> = new Set([40058]);

/** Characters of the hash prefix every outbound msgid of one reply shares (see {@link replyTag}). */
const REPLY_TAG_CHARS = 24;

/**
 * The hash prefix shared by every outbound msgid of the reply to one inbound message: 24 characters of base64url
 * SHA-256 over `open_kfid` and the inbound msgid. It is also how a `msg_send_fail` (which names only our msgid)
 * or a `user_recall_msg` (which names the inbound msgid) finds the reply it concerns.
 */
export function replyTag(openKfid: string, inboundMsgid: string): string {
  return createHash('sha256').update(`${openKfid}\n${inboundMsgid}`).digest('base64url').slice(0, REPLY_TAG_CHARS);
}

/** The {@link replyTag} inside one of our outbound msgids, or null when the id is not ours (e.g. a servicer's). */
export function replyTagOf(outbound: string): string | null {
  return new RegExp(`^[0-9A-Za-z_-]{${REPLY_TAG_CHARS}}_[0-9A-Za-z]{1,7}$`).test(outbound) ? outbound.slice(0, REPLY_TAG_CHARS) : null;
}

/**
 * The outbound msgid of one part of one reply (docs/configuration.md "Outbound msgid"): the {@link replyTag}, `_`, then the
 * part label. At most 32 bytes of `[0-9A-Za-z_-]`, unique per part, and the same on every retry, so WeCom itself
 * refuses a second delivery.
 * @param part part number (0-based) or a short label such as `w` for a welcome (≤ 7 characters of `[0-9A-Za-z]`)
 */
export function outboundMsgid(openKfid: string, inboundMsgid: string, part: number | string): string {
  const label = String(part);
  if (!/^[0-9A-Za-z]{1,7}$/.test(label)) throw new RangeError(`bad part label ${label}`);
  return `${replyTag(openKfid, inboundMsgid)}_${label}`;
}

/** A text message for `kf/send_msg` (docs/protocols.md kf §3.1); `content` ≤ 2048 UTF-8 bytes. */
export interface KfText {
  open_kfid: string;
  touser: string;
  msgid: string;
  content: string;
}

/**
 * Sends one text part, retrying transient failures (-1, 45009, 45033, 5xx, network) a few times with the SAME
 * msgid; a duplicate refusal on such a retry, or when `mayHaveBeenSent` (a re-run after a crash), counts as sent.
 * @returns `sent` or `already_sent`
 * @throws WechatApiError for refusals (95001 window quota, 95018 session state, 45002 too long, …) and for
 *   transient failures that outlasted the retries
 */
export async function sendKfText(
  api: ApiClient,
  msg: KfText,
  opts: { signal: AbortSignal; mayHaveBeenSent: boolean; retries?: number },
): Promise<'sent' | 'already_sent'> {
  const body = { touser: msg.touser, open_kfid: msg.open_kfid, msgid: msg.msgid, msgtype: 'text', text: { content: msg.content } };
  return sendOnce(() => api.post('kf/send_msg', '/cgi-bin/kf/send_msg', body, opts.signal), opts);
}

/**
 * Sends one image (`msgtype: image`, an uploaded `media_id`) with the same retry and duplicate rules as
 * {@link sendKfText}.
 * @throws WechatApiError as sendKfText
 */
export async function sendKfImage(
  api: ApiClient,
  msg: { open_kfid: string; touser: string; msgid: string; media_id: string },
  opts: { signal: AbortSignal; mayHaveBeenSent: boolean; retries?: number },
): Promise<'sent' | 'already_sent'> {
  const body = { touser: msg.touser, open_kfid: msg.open_kfid, msgid: msg.msgid, msgtype: 'image', image: { media_id: msg.media_id } };
  return sendOnce(() => api.post('kf/send_msg', '/cgi-bin/kf/send_msg', body, opts.signal), opts);
}

/**
 * Sends a text through `kf/send_msg_on_event` with an event `code` (welcome_code: 20 s, single use;
 * docs/protocols.md kf §3.2).
 */
export async function sendKfOnEvent(
  api: ApiClient,
  msg: { code: string; msgid: string; content: string },
  opts: { signal: AbortSignal; mayHaveBeenSent: boolean; retries?: number },
): Promise<'sent' | 'already_sent'> {
  const body = { code: msg.code, msgid: msg.msgid, msgtype: 'text', text: { content: msg.content } };
  return sendOnce(() => api.post('kf/send_msg_on_event', '/cgi-bin/kf/send_msg_on_event', body, opts.signal), opts);
}

async function sendOnce(
  call: () => Promise<unknown>,
  opts: { signal: AbortSignal; mayHaveBeenSent: boolean; retries?: number },
): Promise<'sent' | 'already_sent'> {
  let attempt = 0;
  return pRetry(
    async () => {
      attempt += 1;
      try {
        await call();
        return 'sent' as const;
      } catch (e) {
        const repeat = opts.mayHaveBeenSent || attempt > 1;
        if (repeat && e instanceof WechatApiError && e.errcode !== null && DUPLICATE_MSGID_ERRCODES.has(e.errcode)) {
          return 'already_sent' as const;
        }
        throw e;
      }
    },
    {
      retries: opts.retries ?? 3,
      minTimeout: 300,
      factor: 3,
      signal: opts.signal,
      shouldRetry: ({ error }) => error instanceof WechatApiError && error.retryable,
    },
  );
}
