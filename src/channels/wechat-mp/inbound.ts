import { HttpError } from '../../http/http-error.js';
import { xmlText, type XmlElement } from '../../xml/parse.js';

/** Fields every push has (docs/protocols.md OA §4). */
interface PushBase {
  /** ToUserName: the account's original id `gh_…` */
  ghId: string;
  /** FromUserName: the customer's OpenID */
  openid: string;
  /** CreateTime, unix seconds */
  createTime: number;
  raw: XmlElement;
}

/** A customer message (`MsgType` other than `event`). */
export interface MpMessage extends PushBase {
  kind: 'message';
  msgtype: string;
  /** MsgId: a 64-bit integer, kept as a string (beyond JS's safe integers) */
  msgid: string;
}

/** An event push (`MsgType` = `event`). */
export interface MpEvent extends PushBase {
  kind: 'event';
  /** `subscribe`, `unsubscribe`, `SCAN`, `CLICK`, `VIEW`, `LOCATION`, … as sent */
  event: string;
  /** EventKey ('' when absent): a menu key, `qrscene_<scene>` on a QR follow, a URL for VIEW */
  eventKey: string;
}

export type MpPush = MpMessage | MpEvent;

// Ids become parts of store keys and job ids: an id outside these shapes is refused rather than escaped.
const OPENID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MSGID_RE = /^\d{1,20}$/;

/**
 * Reads the trusted (verified, decrypted) push.
 * @throws HttpError 400 `bad_message` when FromUserName, CreateTime, MsgType (or a message's MsgId) is missing
 *   or malformed
 */
export function readPush(raw: XmlElement): MpPush {
  const openid = xmlText(raw, 'FromUserName') ?? '';
  const createTime = xmlText(raw, 'CreateTime') ?? '';
  const msgtype = xmlText(raw, 'MsgType') ?? '';
  const ghId = xmlText(raw, 'ToUserName') ?? '';
  // The reply's FromUserName: without it WeChat drops the reply.
  if (!OPENID_RE.test(ghId)) throw bad('ToUserName');
  if (!OPENID_RE.test(openid)) throw bad('FromUserName');
  if (!/^\d{1,12}$/.test(createTime)) throw bad('CreateTime');
  if (!/^[A-Za-z_]{1,32}$/.test(msgtype)) throw bad('MsgType');
  const base = { ghId, openid, createTime: Number(createTime), raw };
  if (msgtype === 'event') {
    return { ...base, kind: 'event', event: xmlText(raw, 'Event') ?? '', eventKey: xmlText(raw, 'EventKey') ?? '' };
  }
  const msgid = xmlText(raw, 'MsgId') ?? '';
  if (!MSGID_RE.test(msgid)) throw bad('MsgId');
  return { ...base, kind: 'message', msgtype, msgid };
}

/** What the agent is asked for one message; `content: null` = a type the bridge cannot pass on. */
export interface MessageInput {
  content: string | null;
  /** a description of a non-text message (location, link): the echo agent answers it with REPLY_UNSUPPORTED */
  described: boolean;
  /** image: its MediaId (the job downloads it for agents that take images) */
  media_id?: string;
  /** link: its Url (the job reads the page for agents that take descriptions) */
  link_url?: string;
}

/**
 * Text for the agent: `text` as is; `voice` by its `Recognition` (present only when the account switched
 * voice recognition on); `location` and `link` as a short description (the job adds the link's page); `image`
 * by its MediaId (the job downloads it); video and anything else are not passed on (REPLY_UNSUPPORTED).
 */
export function messageInput(m: MpMessage): MessageInput {
  const f = (name: string) => (xmlText(m.raw, name) ?? '').trim();
  switch (m.msgtype) {
    case 'text':
      return f('Content') ? { content: f('Content'), described: false } : { content: null, described: false };
    case 'voice':
      return f('Recognition') ? { content: f('Recognition'), described: false } : { content: null, described: false };
    case 'location': {
      const label = f('Label');
      return { content: `[位置] ${label ? `${label}（` : '（'}纬度 ${f('Location_X')}，经度 ${f('Location_Y')}）`, described: true };
    }
    case 'link':
      return {
        content: ['[链接]', f('Title'), f('Description'), f('Url')].filter(Boolean).join('\n'),
        described: true,
        ...(f('Url') ? { link_url: f('Url') } : {}),
      };
    case 'image':
      return f('MediaId') ? { content: '', described: false, media_id: f('MediaId') } : { content: null, described: false };
    default:
      return { content: null, described: false };
  }
}

/** Message types this version knows (others are logged as unknown). */
export const KNOWN_MSGTYPES = new Set(['text', 'image', 'voice', 'video', 'shortvideo', 'location', 'link', 'file']);

function bad(field: string): HttpError {
  return new HttpError(400, 'bad_message', `message has no valid ${field}`);
}
