import type { WSClient } from '@wecom/aibot-node-sdk';

/** One stream frame (wecom-aibot-protocol.md §4, §9.4): `content` is the whole text so far, not a delta. */
export interface BotWsStreamFrame {
  /** our stream id, the same on every frame of one answer */
  id: string;
  /** true on the last frame; nothing may follow it */
  finish: boolean;
  /** markdown, ≤ 20480 UTF-8 bytes */
  content: string;
  /** images (≤ 10), only on the frame with `finish: true` (the SDK drops them otherwise) */
  msg_item?: Array<{ msgtype: 'image'; image: { base64: string; md5: string } }>;
}

/** Answers one callback (message or event) over the bot's long connection. Every method needs this process to hold
 *  the bot's connection when called. */
export interface BotWsReplier {
  /** `aibot_respond_msg` on the callback's req_id. Resolves on ack errcode 0. @throws BotWsReplyError */
  stream(frame: BotWsStreamFrame): Promise<void>;
  /** `aibot_respond_welcome_msg` (text) on an `enter_chat` event's req_id, within 5 s of it. @throws BotWsReplyError */
  welcome(text: string): Promise<void>;
  /** `aibot_send_msg` markdown to `chatid` (the userid in a single chat, else the group's chatid), our own req_id.
   *  @throws BotWsReplyError */
  sendMarkdown(chatid: string, content: string): Promise<void>;
  /** Uploads temporary media (type image; chunks of 512 KB, ≤ 100). @returns the media_id (valid 3 days)
   *  @throws BotWsReplyError */
  uploadImage(data: Buffer, filename: string): Promise<string>;
  /** `aibot_respond_msg` with an image media reply on the callback's req_id. @throws BotWsReplyError */
  replyImage(mediaId: string): Promise<void>;
  /** Downloads an inbound media URL (valid 5 min) and decrypts it with its per-URL `aeskey` (AES-256-CBC).
   *  Works whether or not the connection is up (plain HTTPS). @throws Error (message only, no URL or key) */
  download(url: string, aeskey: string): Promise<{ data: Buffer; filename?: string }>;
}

/**
 * A reply WeCom refused (`reason: 'refused'`, with its `errcode`/`errmsg`, e.g. 846605 invalid req_id, 846608 stream
 * update expired), that got no ack within the SDK's 5 s (`timeout`), or that could not be sent or was cut off by the
 * socket closing (`failed`; also when this process does not hold the bot's connection).
 */
export class BotWsReplyError extends Error {
  readonly reason: 'refused' | 'timeout' | 'failed';
  readonly cmd: string;
  readonly errcode?: number;
  readonly errmsg?: string;
  constructor(cmd: string, reason: 'refused' | 'timeout' | 'failed', message: string, errcode?: number, errmsg?: string) {
    super(`${cmd}: ${message}`);
    this.name = 'BotWsReplyError';
    this.cmd = cmd;
    this.reason = reason;
    if (errcode !== undefined) this.errcode = errcode;
    if (errmsg !== undefined) this.errmsg = errmsg;
  }
}

/**
 * The replier of one callback.
 * @param reqId the callback's `headers.req_id`
 * @param currentClient the bot's connected client at call time, or null when this process does not hold it (a
 *   reconnection by the SDK keeps the same client; a new lease tenure brings a new one)
 * @param downloader a client used only for `downloadFile` (HTTP; it needs no connection)
 */
export function createBotWsReplier(reqId: string, currentClient: () => WSClient | null, downloader: () => WSClient): BotWsReplier {
  const frame = { headers: { req_id: reqId } };
  const call = async <T>(cmd: string, fn: (c: WSClient) => Promise<T>): Promise<T> => {
    const client = currentClient();
    if (!client) throw new BotWsReplyError(cmd, 'failed', 'this process does not hold the bot\'s long connection');
    try {
      return await fn(client);
    } catch (e) {
      throw toReplyError(cmd, e);
    }
  };
  return {
    stream: async (f) => {
      await call('aibot_respond_msg', (c) => c.replyStream(frame, f.id, f.content, f.finish, f.msg_item));
    },
    welcome: async (text) => {
      await call('aibot_respond_welcome_msg', (c) => c.replyWelcome(frame, { msgtype: 'text', text: { content: text } }));
    },
    sendMarkdown: async (chatid, content) => {
      await call('aibot_send_msg', (c) => c.sendMessage(chatid, { msgtype: 'markdown', markdown: { content } }));
    },
    uploadImage: async (data, filename) =>
      (await call('aibot_upload_media', (c) => c.uploadMedia(data, { type: 'image', filename }))).media_id,
    replyImage: async (mediaId) => {
      await call('aibot_respond_msg', (c) => c.replyMedia(frame, 'image', mediaId));
    },
    download: async (url, aeskey) => {
      try {
        const { buffer, filename } = await downloader().downloadFile(url, aeskey);
        return filename === undefined ? { data: buffer } : { data: buffer, filename };
      } catch (e) {
        // axios errors carry the request (URL, headers) and a logged `cause` would escape the logger's redaction
        // paths: keep the message and status only.
        const status = (e as { response?: { status?: unknown } }).response?.status;
        // eslint-disable-next-line preserve-caught-error
        throw new Error(`bot media download failed${typeof status === 'number' ? ` (HTTP ${status})` : ''}: ${(e as Error).message}`);
      }
    },
  };
}

/**
 * The SDK rejects a refused reply with the ack frame itself (not an Error), a timed-out or cut-off one with an
 * Error, and a failed upload with an Error whose message embeds the refused ack's JSON.
 */
export function toReplyError(cmd: string, e: unknown): BotWsReplyError {
  if (e && typeof e === 'object' && !(e instanceof Error) && typeof (e as { errcode?: unknown }).errcode === 'number') {
    const ack = e as { errcode: number; errmsg?: unknown };
    const errmsg = typeof ack.errmsg === 'string' ? ack.errmsg : '';
    return new BotWsReplyError(cmd, 'refused', `refused: errcode ${ack.errcode} ${errmsg}`.trim(), ack.errcode, errmsg);
  }
  const message = e instanceof Error ? e.message : String(e);
  const embedded = /"errcode":\s*(-?\d+)(?:,\s*"errmsg":\s*"([^"]*)")?/.exec(message);
  if (embedded) return new BotWsReplyError(cmd, 'refused', message, Number(embedded[1]), embedded[2]);
  return new BotWsReplyError(cmd, /ack timeout/i.test(message) ? 'timeout' : 'failed', message);
}
