/**
 * The decrypted JSON of smart-bot callbacks as WeCom sends them (wecom-aibot-protocol.md §3, §5, §7), in WeCom's
 * key order. Builders return a {@link BotDraft}: the message type and its payload plus any envelope field the test
 * wants to fix; {@link completeMessage} fills the rest (the fake does this in `send`).
 *
 * Units: `create_time` is unix SECONDS (events only; message callbacks carry none in callback mode).
 */
import { randomBytes } from 'node:crypto';

/** Plain JSON object; tests read decrypted messages freely. */
export type Json = Record<string, unknown>;

/**
 * A callback before defaults: `msgtype` and its payload object (`text`, `image`, …), optionally `quote` and any
 * envelope field to fix (`msgid`, `aibotid`, `chatid`, `chattype`, `from`, `create_time`). `response_url: null`
 * leaves the URL out; a string fixes it.
 */
export type BotDraft = { msgtype: string; response_url?: string | null } & Json;

/** A complete callback as encrypted and posted. */
export type BotMessage = {
  msgid: string;
  aibotid: string;
  chattype: 'single' | 'group';
  from: { userid: string; corpid?: string };
  msgtype: string;
  chatid?: string;
  response_url?: string;
  create_time?: number;
} & Json;

/** Envelope overrides every builder accepts. `chatid` makes it a group message. */
export interface DraftOpts {
  msgid?: string;
  userid?: string;
  chatid?: string;
  /** null: no response_url; a string: this one; absent: the fake's default. */
  response_url?: string | null;
  /** A quoted earlier message: any draft from these builders (only its msgtype and payload are kept). */
  quote?: BotDraft;
}

/** Like WeCom's (`CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=`): base64 of 23 bytes starting 08 02 10, 32 characters with + / =. */
export const newBotMsgId = (): string => Buffer.concat([Buffer.from([8, 2, 16]), randomBytes(20)]).toString('base64');
/** A group chat id (format unconfirmed; `wr` + 30 URL-safe characters). */
export const newChatId = (): string => `wr${randomBytes(23).toString('base64url').slice(0, 30)}`;

/** `{msgtype, [msgtype]: payload}` of a draft: the shape of a `quote`, a `mixed` item, … */
export function payloadOf(d: BotDraft): Json {
  return { msgtype: d.msgtype, [d.msgtype]: d[d.msgtype] };
}

function draft(msgtype: string, payload: Json, o: DraftOpts = {}): BotDraft {
  const d: BotDraft = { msgtype, [msgtype]: payload };
  if (o.msgid !== undefined) d.msgid = o.msgid;
  if (o.userid !== undefined) d.from = { userid: o.userid };
  if (o.chatid !== undefined) d.chatid = o.chatid;
  if (o.response_url !== undefined) d.response_url = o.response_url;
  if (o.quote !== undefined) d.quote = payloadOf(o.quote);
  return d;
}

/** A single-chat text (`text.content`); with `o.chatid` a group text WITHOUT the @mention (see {@link botGroupText}). */
export const botText = (content: string, o?: DraftOpts): BotDraft => draft('text', { content }, o);

/**
 * A group text as WeCom delivers it: `text.content` = `@<robotName> <content>` (robotName default `RobotA`),
 * `chatid` given or fresh, `chattype` group.
 */
export const botGroupText = (content: string, o: DraftOpts & { robotName?: string } = {}): BotDraft =>
  draft('text', { content: `@${o.robotName ?? 'RobotA'} ${content}` }, { ...o, chatid: o.chatid ?? newChatId() });

/** An image (single chat only): `image.url` points at encrypted bytes (see the media server). */
export const botImage = (url: string, o?: DraftOpts): BotDraft => draft('image', { url }, o);

/**
 * A mixed text+image message: `mixed.msg_item[]` from `{text}` / `{image: url}` items in order. With `o.mention`
 * the first text item starts with `@<mention> ` (group chats).
 */
export function botMixed(items: Array<{ text: string } | { image: string }>, o: DraftOpts & { mention?: string } = {}): BotDraft {
  let mentioned = o.mention === undefined;
  const msg_item = items.map((it) => {
    if ('image' in it) return { msgtype: 'image', image: { url: it.image } };
    const content = mentioned ? it.text : `@${o.mention} ${it.text}`;
    mentioned = true;
    return { msgtype: 'text', text: { content } };
  });
  return draft('mixed', { msg_item }, o);
}

/** A voice message (single chat only): `voice.content` is WeCom's transcription. */
export const botVoice = (content: string, o?: DraftOpts): BotDraft => draft('voice', { content }, o);
/** A file (single chat only, ≤ 100 MB): `file.url` points at encrypted bytes. */
export const botFile = (url: string, o?: DraftOpts): BotDraft => draft('file', { url }, o);
/** A video (single chat only): `video.url` points at encrypted bytes. */
export const botVideo = (url: string, o?: DraftOpts): BotDraft => draft('video', { url }, o);

/** The `enter_chat` event (single chat, first visit of the day): `event: {eventtype: "enter_chat"}`, no response_url. */
export const botEnterChat = (o: Omit<DraftOpts, 'quote' | 'response_url'> = {}): BotDraft => ({
  ...draft('event', { eventtype: 'enter_chat' }, o),
  response_url: null,
});

/**
 * A `feedback_event`: `event: {eventtype, feedback_event: {id, type (1 accurate, 2 inaccurate, 3 cancelled),
 * content?, inaccurate_reason_list?}}`, no response_url. Only an empty reply is allowed.
 */
export const botFeedback = (
  fb: { id: string; type: 1 | 2 | 3; content?: string; inaccurate_reason_list?: number[] },
  o: Omit<DraftOpts, 'quote' | 'response_url'> = {},
): BotDraft => ({ ...draft('event', { eventtype: 'feedback_event', feedback_event: fb }, o), response_url: null });

/** What {@link completeMessage} fills in when the draft leaves it out. */
export interface MessageDefaults {
  aibotid: string;
  userid: string;
  /** A fresh response_url for a message callback (not called for events and refreshes). */
  responseUrl: () => string;
}

const ENVELOPE = new Set(['msgid', 'create_time', 'aibotid', 'chatid', 'chattype', 'from', 'response_url', 'msgtype']);

/**
 * The complete callback in WeCom's key order: msgid, create_time (events, unix s), aibotid, chatid (groups),
 * chattype (`group` iff chatid), from, response_url (message callbacks unless the draft says null), msgtype,
 * payload, quote. Draft values win over defaults.
 */
export function completeMessage(d: BotDraft, defs: MessageDefaults): BotMessage {
  const isEvent = d.msgtype === 'event';
  const chatid = typeof d.chatid === 'string' ? d.chatid : undefined;
  const m: Json = { msgid: d.msgid ?? newBotMsgId() };
  if (isEvent) m.create_time = d.create_time ?? Math.floor(Date.now() / 1000);
  m.aibotid = d.aibotid ?? defs.aibotid;
  if (chatid !== undefined) m.chatid = chatid;
  m.chattype = d.chattype ?? (chatid !== undefined ? 'group' : 'single');
  m.from = d.from ?? { userid: defs.userid };
  if (d.response_url !== null && (d.response_url !== undefined || (!isEvent && d.msgtype !== 'stream'))) {
    m.response_url = d.response_url ?? defs.responseUrl();
  }
  m.msgtype = d.msgtype;
  for (const [k, v] of Object.entries(d)) if (!ENVELOPE.has(k)) m[k] = v;
  return m as BotMessage;
}

/** The refresh poll WeCom sends while a stream is unfinished (§5): a fresh msgid, the original chat, `stream.id`. */
export function refreshOf(original: BotMessage, streamId: string): BotMessage {
  const m: Json = { msgid: newBotMsgId(), aibotid: original.aibotid };
  if (original.chatid !== undefined) m.chatid = original.chatid;
  m.chattype = original.chattype;
  m.from = original.from;
  m.msgtype = 'stream';
  m.stream = { id: streamId };
  return m as BotMessage;
}
