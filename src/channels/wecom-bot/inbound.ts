import { createHash } from 'node:crypto';
import { HttpError } from '../../http/http-error.js';
import type { BotMessageJob } from '../../pipeline/jobs.js';

/** A decrypted smart-bot callback (wecom-aibot-protocol.md §3, §5, §7), read defensively. */
export type BotInbound =
  | { kind: 'refresh'; streamId: string; msgid: string }
  | { kind: 'event'; eventtype: string; userid: string; chatid: string | null; msgid: string }
  | { kind: 'message'; msgid: string; userid: string; chatid: string | null; chattype: 'single' | 'group'; msgtype: string; body: Record<string, unknown> };

// Ids become parts of store keys, job ids and customer keys (`:`-separated): anything else is refused.
const ID_RE = /^[A-Za-z0-9_.@=+/-]{1,256}$/;
const USER_RE = /^[A-Za-z0-9_.@-]{1,128}$/;

/**
 * Reads the trusted (verified, decrypted) JSON of a smart-bot callback.
 * @throws HttpError 400 `bad_message` when it is not an object or misses a field its kind needs
 */
export function readBotInbound(json: unknown): BotInbound {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw bad('body');
  const m = json as Record<string, unknown>;
  const msgid = str(m.msgid);
  const msgtype = str(m.msgtype);
  if (msgtype === 'stream') {
    const streamId = str(obj(m.stream).id);
    if (!ID_RE.test(streamId)) throw bad('stream.id');
    return { kind: 'refresh', streamId, msgid };
  }
  const userid = str(obj(m.from).userid);
  if (!USER_RE.test(userid)) throw bad('from.userid');
  const chatid = m.chatid === undefined || m.chatid === '' ? null : str(m.chatid);
  if (chatid !== null && !USER_RE.test(chatid)) throw bad('chatid');
  if (msgtype === 'event') return { kind: 'event', eventtype: str(obj(m.event).eventtype), userid, chatid, msgid };
  if (!ID_RE.test(msgid)) throw bad('msgid');
  if (!/^[a-z_]{1,32}$/.test(msgtype)) throw bad('msgtype');
  return { kind: 'message', msgid, userid, chatid, chattype: m.chattype === 'group' || chatid !== null ? 'group' : 'single', msgtype, body: m };
}

/**
 * The stream id of one message's answer: derived, so WeCom's retry of the message (same msgid) and a replica that
 * never saw the first delivery name the same stream. 22 base64url characters of SHA-256.
 */
export function streamIdOf(botId: string, msgid: string): string {
  return createHash('sha256').update(`${botId}\n${msgid}`).digest('base64url').slice(0, 22);
}

/** The customer's user part: the userid in a 1:1 chat; `<userid>@<chatid>` in a group (one conversation per group). */
export function botUserKey(userid: string, chatid: string | null): string {
  return chatid ? `${userid}@${chatid}` : userid;
}

/**
 * The job for a customer message. Text: the group's leading `@<name>` removed (interface.md "Smart bot");
 * voice: its transcript; mixed: its texts joined and its images; image and file: their URLs (downloaded when the
 * reply is planned, within their 5 minutes); a quote becomes context. Other types are `supported: false`.
 */
export function toBotJob(
  msg: Extract<BotInbound, { kind: 'message' }>,
  o: { botId: string; mode: BotMessageJob['mode']; receivedAtMs: number },
): BotMessageJob {
  const b = msg.body;
  const group = msg.chattype === 'group';
  const base: BotMessageJob = {
    channel: 'bot',
    type: 'bot.message',
    botId: o.botId,
    mode: o.mode,
    userid: msg.userid,
    chatid: msg.chatid,
    msgid: msg.msgid,
    streamId: streamIdOf(o.botId, msg.msgid),
    received_at_ms: o.receivedAtMs,
    msgtype: msg.msgtype,
    text: '',
    images: [],
    supported: true,
  };
  const responseUrl = str(b.response_url);
  if (/^https?:\/\//.test(responseUrl)) base.response_url = responseUrl;
  const quote = quoteText(obj(b.quote));
  if (quote) base.quote = quote;
  switch (msg.msgtype) {
    case 'text':
      return { ...base, text: group ? stripMention(str(obj(b.text).content)) : str(obj(b.text).content) };
    case 'voice':
      return { ...base, text: str(obj(b.voice).content) };
    case 'image':
      return { ...base, images: media(obj(b.image)) };
    case 'file':
      return { ...base, ...(media(obj(b.file))[0] ? { file: media(obj(b.file))[0] } : { supported: false }) };
    case 'mixed': {
      const items = Array.isArray(obj(b.mixed).msg_item) ? (obj(b.mixed).msg_item as unknown[]) : [];
      const texts: string[] = [];
      const images: BotMessageJob['images'] = [];
      for (const item of items.slice(0, 20)) {
        const i = obj(item);
        if (i.msgtype === 'text') texts.push(str(obj(i.text).content));
        else if (i.msgtype === 'image') images.push(...media(obj(i.image)));
      }
      const text = texts.join('\n').trim();
      return { ...base, text: group ? stripMention(text) : text, images };
    }
    default:
      return { ...base, supported: false };
  }
}

/** A group message starts with the bot's @mention and white space (also U+2005, which WeCom puts after it). */
export function stripMention(text: string): string {
  return text.replace(/^\s*@\S+[\s\u2005\u3000]+/u, '');
}

function quoteText(q: Record<string, unknown>): string {
  switch (q.msgtype) {
    case 'text':
      return str(obj(q.text).content);
    case 'voice':
      return str(obj(q.voice).content);
    case 'mixed': {
      const items = Array.isArray(obj(q.mixed).msg_item) ? (obj(q.mixed).msg_item as unknown[]) : [];
      return items.map((i) => str(obj(obj(i).text).content)).filter(Boolean).join('\n');
    }
    default:
      return '';
  }
}

function media(m: Record<string, unknown>): Array<{ url: string; aeskey?: string }> {
  const url = str(m.url);
  if (!/^https?:\/\//.test(url)) return [];
  const aeskey = str(m.aeskey);
  return [{ url, ...(aeskey ? { aeskey } : {}) }];
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

function bad(field: string): HttpError {
  return new HttpError(400, 'bad_message', `smart bot message has no valid ${field}`);
}
