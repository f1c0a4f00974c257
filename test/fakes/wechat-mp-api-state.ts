/**
 * State of the fake Official Account API (see wechat-mp-api.ts): access_tokens (classic and stable), per user the
 * last interaction, the customer-service quota and the typing indicator, and temporary media (OA §8). No I/O here;
 * the HTTP layer turns the answers into JSON. Protocol: docs/protocols.md OA §6–§8.
 *
 * Units: every time in this module is epoch milliseconds from Date.now() (so `vi.useFakeTimers()` moves it);
 * `expires_in` and media `created_at` in answers are seconds.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { MB, MediaStore, extensionOf, mpMediaId, type FormPart, type MediaItem } from './fake-media.js';

/** A WeChat JSON answer. Errors and API successes carry `errcode`; token successes do not (like WeChat). */
export type Answer = Record<string, unknown>;

/** An error answer; errmsg ends with a request id like WeChat's (`rid: …`). Decide on errcode, never errmsg. */
export const err = (errcode: number, errmsg: string): Answer => ({
  errcode,
  errmsg: `${errmsg} rid: ${randomBytes(12).toString('hex').replace(/(.{8})(.{8})/, '$1-$2-')}`,
});
const OK = (): Answer => ({ errcode: 0, errmsg: 'ok' });
export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** What the user did last; it opens the sending window and sets the quota. */
export type InteractionKind = 'message' | 'click' | 'subscribe' | 'scan';
/** custom/send window after each kind of interaction (OA §6): 48 h after a message, 1 minute after the others. */
export const SEND_WINDOW_MS: Record<InteractionKind, number> = {
  message: 48 * 3600_000,
  click: 60_000,
  subscribe: 60_000,
  scan: 60_000,
};
/** custom/send quota per interaction (OA §6): 5 after a message, 3 after the others. */
export const SEND_QUOTA: Record<InteractionKind, number> = { message: 5, click: 3, subscribe: 3, scan: 3 };
/** custom/typing needs an interaction this recent (45080 otherwise). */
export const TYPING_NEEDS_INTERACTION_MS = 30_000;
/** A Typing indicator stays active this long (45081 for a new Typing meanwhile). */
export const TYPING_TTL_MS = 15_000;
/** Minimum gap between two stable_token force refreshes (45011 otherwise). */
export const FORCE_REFRESH_GAP_MS = 30_000;
/** A classic /cgi-bin/token call leaves the previous classic tokens valid this long. */
export const CLASSIC_OVERLAP_MS = 5 * 60_000;
/** Largest custom/send text, in UTF-8 bytes (OA §6, empirical). */
export const MAX_TEXT_BYTES = 2048;

/** msgtypes custom/send accepts (OA §6); anything else answers 40008. */
const SEND_TYPES = new Set([
  'text', 'image', 'voice', 'video', 'music', 'news', 'mpnews', 'mpnewsarticle', 'msgmenu', 'wxcard', 'miniprogrampage',
]);
// Real OpenIDs are 28 characters of this alphabet; any length is accepted so tests may use readable ids.
const OPENID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * An accepted custom/send. `content` is `text.content` for text; `media_id` is `[msgtype].media_id` for
 * image/voice; `body` is the whole request. `at` epoch ms.
 */
export interface MpSentMessage {
  touser: string;
  msgtype: string;
  content?: string;
  media_id?: string;
  body: Record<string, unknown>;
  at: number;
}

/** A successful media/upload. `at` epoch ms; `bytes` the `media` part as received. */
export interface MpUpload {
  type: string;
  media_id: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
  at: number;
}

/**
 * media/upload rules per `type` (OA §8): max bytes, the size errcode, and accepted filename extensions. Image 2 MB
 * (Tencent lists 2 MB and 10 MB; the doc picks 2 MB) bmp/png/jpeg/jpg/gif → 40009; voice 2 MB amr/mp3 → 40010;
 * video 10 MB mp4 → 40011; thumb 64 KB jpg → 40012.
 */
export const MP_MEDIA_RULES: Record<string, { maxBytes: number; sizeErr: [number, string]; exts: ReadonlySet<string> }> = {
  image: { maxBytes: 2 * MB, sizeErr: [40009, 'invalid image size'], exts: new Set(['bmp', 'png', 'jpeg', 'jpg', 'gif']) },
  voice: { maxBytes: 2 * MB, sizeErr: [40010, 'invalid voice size'], exts: new Set(['amr', 'mp3']) },
  video: { maxBytes: 10 * MB, sizeErr: [40011, 'invalid video size'], exts: new Set(['mp4']) },
  thumb: { maxBytes: 64 * 1024, sizeErr: [40012, 'invalid thumb size'], exts: new Set(['jpg', 'jpeg']) },
};

interface TokenInfo {
  kind: 'classic' | 'stable';
  expiresAt: number;
  /** from then on the token answers 40001 (superseded classic token, or stable token after a force refresh) */
  invalidAt: number | null;
}

/** Issued access_tokens and the platform's current stable token. */
export class MpTokens {
  private readonly tokens = new Map<string, TokenInfo>();
  private stableCurrent: string | null = null;
  private lastForceAt: number | null = null;

  constructor(
    private readonly appId: string,
    private readonly appSecret: string,
    private readonly ttlS: number,
  ) {}

  private issue(kind: TokenInfo['kind'], now: number): string {
    // ~140 chars like real tokens: a short numeric prefix, then base64url.
    const token = `${randomInt(60, 100)}_${randomBytes(102).toString('base64url')}`;
    this.tokens.set(token, { kind, expiresAt: now + this.ttlS * 1000, invalidAt: null });
    return token;
  }

  /** grant_type / appid / secret, in this order: 40002, 41002, 40013, 41004, 40001. */
  credentials(grantType: unknown, appid: unknown, secret: unknown): Answer | null {
    if (grantType !== 'client_credential') return err(40002, 'invalid grant_type');
    if (typeof appid !== 'string' || appid === '') return err(41002, 'appid missing');
    if (appid !== this.appId) return err(40013, 'invalid appid');
    if (typeof secret !== 'string' || secret === '') return err(41004, 'appsecret missing');
    if (secret !== this.appSecret) return err(40001, 'invalid credential, access_token is invalid or not latest');
    return null;
  }

  /** GET /cgi-bin/token after the credential checks: a new token; older classic ones keep 5 minutes. */
  classic(now: number): Answer {
    for (const info of this.tokens.values()) {
      if (info.kind === 'classic') info.invalidAt = Math.min(info.invalidAt ?? Infinity, now + CLASSIC_OVERLAP_MS);
    }
    return { access_token: this.issue('classic', now), expires_in: this.ttlS };
  }

  /**
   * POST /cgi-bin/stable_token after the credential checks. Normal call: the current token with its remaining
   * `expires_in`; a new one when there is none, it expired, or it is in its last ttl/24 (300 s of 7200, when
   * the platform renews: the old one stays valid until its own expiry). `force`: 45011 within 30 s of the last
   * accepted force refresh, else a new token and every earlier stable token answers 40001 from now on.
   */
  stable(force: boolean, now: number): Answer {
    if (force) {
      if (this.lastForceAt !== null && now - this.lastForceAt < FORCE_REFRESH_GAP_MS) {
        return err(45011, 'api minute-quota reach limit mustslower retry next minute');
      }
      this.lastForceAt = now;
      for (const info of this.tokens.values()) if (info.kind === 'stable') info.invalidAt ??= now;
    } else if (this.stableCurrent !== null) {
      const info = this.tokens.get(this.stableCurrent)!;
      const remaining = info.expiresAt - now;
      if (info.invalidAt === null && remaining > (this.ttlS * 1000) / 24) {
        return { access_token: this.stableCurrent, expires_in: Math.floor(remaining / 1000) };
      }
    }
    this.stableCurrent = this.issue('stable', now);
    return { access_token: this.stableCurrent, expires_in: this.ttlS };
  }

  /** The access_token check of every API: 41001 missing, 40001 invalidated, 40014 unknown, 42001 expired. */
  check(token: string | undefined, now: number): Answer | null {
    if (token === undefined || token === '') return err(41001, 'access_token missing');
    const info = this.tokens.get(token);
    if (info?.invalidAt != null && info.invalidAt <= now) {
      return err(40001, 'invalid credential, access_token is invalid or not latest');
    }
    if (info === undefined) return err(40014, 'invalid access_token');
    if (info.expiresAt <= now) return err(42001, 'access_token expired');
    return null;
  }

  /** Every token issued so far answers 42001; the next stable_token call issues a new one. */
  expireAll(): void {
    for (const info of this.tokens.values()) info.expiresAt = 0;
  }
}

interface UserState {
  kind: InteractionKind;
  at: number;
  sends: number;
  unfollowed: boolean;
  typingUntil: number;
}

/** Temporary media of one fake instance: media/upload and media/get after the token check. */
export class MpMedia {
  readonly store = new MediaStore(mpMediaId);
  /** Successful uploads, in order. */
  readonly uploads: MpUpload[] = [];

  /**
   * media/upload, with the parsed multipart parts (null when not multipart/form-data or malformed). In order:
   * 48001 `unauthorized` (needs a verified account); 40004 `type` missing or not image|voice|video|thumb ("invalid
   * media type"); 41005 not multipart or no `media` part ("media data missing"); 47001 more than one `media` part
   * (unconfirmed); 40005 `media` without a filename or with an extension the type does not accept ("invalid file
   * type"); 44001 empty file; 40009/40010/40011/40012 over the type's size limit. Success (no errcode, like
   * WeChat): `{type, media_id, created_at}` with created_at a NUMBER of unix seconds — except type thumb, which
   * answers `thumb_media_id` instead of `media_id` (a WeChat quirk reported by SDKs; unconfirmed).
   */
  upload(type: string | undefined, parts: FormPart[] | null, unauthorized: boolean, now: number): Answer {
    if (unauthorized) return err(48001, 'api unauthorized');
    const rule = type === undefined ? undefined : MP_MEDIA_RULES[type];
    if (type === undefined || rule === undefined) return err(40004, 'invalid media type');
    const media = (parts ?? []).filter((p) => p.name === 'media');
    if (media.length === 0) return err(41005, 'media data missing');
    if (media.length > 1) return err(47001, 'data format error');
    const part = media[0]!;
    if (part.filename === undefined || !rule.exts.has(extensionOf(part.filename))) return err(40005, 'invalid file type');
    if (part.bytes.length === 0) return err(44001, 'empty media data');
    if (part.bytes.length > rule.maxBytes) return err(...rule.sizeErr);
    const item = this.store.put({ type, filename: part.filename, contentType: part.contentType, bytes: part.bytes }, now);
    this.uploads.push({ type, media_id: item.media_id, filename: item.filename, contentType: item.contentType, bytes: item.bytes, at: now });
    const createdAt = Math.floor(now / 1000);
    return type === 'thumb'
      ? { type, thumb_media_id: item.media_id, created_at: createdAt }
      : { type, media_id: item.media_id, created_at: createdAt };
  }

  /** media/get: the medium, or 40007 for a media_id that is missing, unknown or older than 3 days. */
  download(mediaId: string | undefined, now: number): MediaItem | Answer {
    return this.store.get(mediaId, now) ?? err(40007, 'invalid media_id');
  }
}

/** Per-user interaction, quota and typing state, plus the accepted sends. */
export class MpUsers {
  private readonly users = new Map<string, UserState>();
  /** Accepted custom/send messages, in order. */
  readonly sent: MpSentMessage[] = [];
  /** While true, custom/send, custom/typing and media/upload answer 48001 (unverified account). */
  unauthorized = false;

  /** @param media the instance's media; image/voice sends must name a live medium in it. */
  constructor(private readonly media: MediaStore = new MediaStore(mpMediaId)) {}

  /** The user did something (a new interaction resets the quota and clears an unfollow). */
  interacted(openid: string, kind: InteractionKind, at: number): void {
    const typingUntil = this.users.get(openid)?.typingUntil ?? 0;
    this.users.set(openid, { kind, at, sends: 0, unfollowed: false, typingUntil });
  }

  unfollow(openid: string): void {
    const u = this.users.get(openid);
    if (u) u.unfollowed = true;
    else this.users.set(openid, { kind: 'message', at: 0, sends: 0, unfollowed: true, typingUntil: 0 });
  }

  /** Shared head of both APIs: 48001, 47001, 40003. */
  private common(body: unknown): { error: Answer } | { touser: string; body: Record<string, unknown> } {
    if (this.unauthorized) return { error: err(48001, 'api unauthorized') };
    if (!isObj(body)) return { error: err(47001, 'data format error') };
    if (typeof body.touser !== 'string' || !OPENID_RE.test(body.touser)) return { error: err(40003, 'invalid openid') };
    return { touser: body.touser, body };
  }

  /**
   * custom/send after the token check. In order: 48001 unauthorized; 47001 not a JSON object; 40003 touser;
   * 40008 msgtype; text: 44004 empty content, 45002 over 2048 UTF-8 bytes; image/voice: 40007 media_id missing,
   * unknown or older than 3 days;
   * other types: 47001 when the `[msgtype]` object is missing; 45015 no/expired/unfollowed window; 45047 quota.
   */
  send(raw: unknown, now: number): Answer {
    const head = this.common(raw);
    if ('error' in head) return head.error;
    const { touser, body } = head;
    const msgtype = body.msgtype;
    if (typeof msgtype !== 'string' || !SEND_TYPES.has(msgtype)) return err(40008, 'invalid message type');
    const part = body[msgtype];
    let content: string | undefined;
    let mediaId: string | undefined;
    if (msgtype === 'text') {
      content = isObj(part) && typeof part.content === 'string' ? part.content : '';
      if (content === '') return err(44004, 'empty content');
      if (Buffer.byteLength(content, 'utf8') > MAX_TEXT_BYTES) return err(45002, 'content size out of limit');
    } else if (msgtype === 'image' || msgtype === 'voice') {
      const m = isObj(part) ? this.media.get(part.media_id, now) : undefined;
      if (m === undefined) return err(40007, 'invalid media_id');
      mediaId = m.media_id;
    } else if (!isObj(part) || (msgtype === 'msgmenu' && !Array.isArray(part.list))) {
      return err(47001, 'data format error');
    }
    const u = this.users.get(touser);
    if (!u || u.unfollowed || now - u.at > SEND_WINDOW_MS[u.kind]) return err(45015, 'response out of time limit');
    if (u.sends >= SEND_QUOTA[u.kind]) return err(45047, 'out of response count limit');
    u.sends += 1;
    u.typingUntil = 0;
    this.sent.push({
      touser, msgtype, ...(content !== undefined && { content }), ...(mediaId !== undefined && { media_id: mediaId }), body, at: now,
    });
    return OK();
  }

  /**
   * custom/typing after the token check. In order: 48001; 47001; 40003; 45072 command not Typing/CancelTyping;
   * 45080 no interaction in the last 30 s (or unfollowed); 45081 Typing while a Typing is active (15 s).
   * CancelTyping with nothing active is accepted.
   */
  typing(raw: unknown, now: number): Answer {
    const head = this.common(raw);
    if ('error' in head) return head.error;
    const { touser, body } = head;
    if (body.command !== 'Typing' && body.command !== 'CancelTyping') return err(45072, 'command invalid');
    const u = this.users.get(touser);
    if (!u || u.unfollowed || now - u.at > TYPING_NEEDS_INTERACTION_MS) {
      return err(45080, 'has not sent message to user');
    }
    if (body.command === 'Typing') {
      if (u.typingUntil > now) return err(45081, 'already typing');
      u.typingUntil = now + TYPING_TTL_MS;
    } else {
      u.typingUntil = 0;
    }
    return OK();
  }
}
