/**
 * State of the fake WeCom kf API (see wecom-kf.ts): the global message log with opaque cursors, sync Tokens,
 * welcome codes, outbound msgid registry, the per-customer send budget, the conversation states and msg_codes
 * (wecom-kf-service-state.ts) and temporary media (fake-media.ts). No I/O here; the HTTP layer in wecom-kf.ts
 * turns the results into WeCom-shaped JSON answers. Protocol: docs/protocols.md, kf part.
 *
 * Units: `send_time` and media `created_at` are unix SECONDS (like WeCom); every other time in this module is
 * epoch milliseconds.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MB, MediaStore, extensionOf, wecomMediaId, type FormPart, type MediaItem } from './fake-media.js';
import { KfConversations, type ServiceState } from './wecom-kf-service-state.js';

/** A WeCom JSON answer: `errcode` (0 = ok), `errmsg`, and the API's fields. */
export type Answer = Record<string, unknown> & { errcode: number; errmsg: string };
/** A WeCom error: `errcode` (never 0) and a short errmsg text. */
export interface ApiError {
  errcode: number;
  errmsg: string;
}

/**
 * An accepted outbound message. `at` is epoch ms; `content` is `text.content` for text; `media_id` the
 * `[msgtype].media_id` for image/voice/video/file; `code` only for send_msg_on_event.
 */
export interface SentMessage {
  api: 'send_msg' | 'send_msg_on_event';
  open_kfid?: string;
  touser?: string;
  msgid: string;
  msgtype: string;
  content?: string;
  media_id?: string;
  code?: string;
  at: number;
}

/** A successful media/upload. `at` is epoch ms; `bytes` the file part as received. */
export interface KfUpload {
  type: string;
  media_id: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
  at: number;
}

/** An error answer with an errmsg shaped like WeCom's (hint, more-info link). */
export function fail(e: ApiError): Answer {
  const hint = `hint: [${Math.floor(Date.now() / 1000)}-fake], from ip: 127.0.0.1`;
  const more = `more info at https://open.work.weixin.qq.com/devtool/query?e=${e.errcode}`;
  return { errcode: e.errcode, errmsg: `${e.errmsg}, ${hint}, ${more}` };
}
export const err = (errcode: number, errmsg: string): Answer => fail({ errcode, errmsg });
export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
export const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

const SEND_TYPES = new Set([
  'text', 'image', 'voice', 'video', 'file', 'link', 'miniprogram', 'msgmenu', 'location', 'ca_link',
]);
const EVENT_SEND_TYPES = new Set(['text', 'msgmenu']);
/** send_msg types whose body is `{media_id}` of an uploaded (or addMedia) medium. */
const MEDIA_SEND_TYPES = new Set(['image', 'voice', 'video', 'file']);

/**
 * media/upload rules per `type`: max size in bytes (image/video 10 MB, voice 2 MB, file 20 MB; kf §5.3, "not
 * re-verified") and the accepted filename extensions (image JPG/PNG, voice AMR, video MP4, file anything).
 * Every file must be larger than 5 bytes (WeCom's published rule).
 */
export const KF_MEDIA_RULES: Record<string, { maxBytes: number; exts: ReadonlySet<string> | null }> = {
  image: { maxBytes: 10 * MB, exts: new Set(['jpg', 'jpeg', 'png']) },
  voice: { maxBytes: 2 * MB, exts: new Set(['amr']) },
  video: { maxBytes: 10 * MB, exts: new Set(['mp4']) },
  file: { maxBytes: 20 * MB, exts: null },
};
export const KF_MEDIA_MIN_BYTES = 6;
/** media/get without Range refuses media over 20 MB with 830002 (fetch them in Range chunks of ≤ 20 MB). */
export const KF_MEDIA_GET_MAX_BYTES = 20 * MB;

/** Messages older than this are no longer returned by sync_msg (WeCom keeps 3 days). */
export const RETENTION_S = 3 * 24 * 3600;
/** Outbound sends are allowed only this long after the customer's last message (48 h window). */
export const SEND_WINDOW_S = 48 * 3600;
/** At most this many send_msg per customer per window; the next one answers 95001. */
export const SEND_BUDGET = 5;
/** Lifetime of a callback sync Token (10 minutes). */
export const SYNC_TOKEN_TTL_MS = 10 * 60_000;
/** Lifetime of a welcome_code (20 seconds). */
export const WELCOME_CODE_TTL_MS = 20_000;

/** 44 characters of `[A-Za-z0-9_-]`, like real inbound msgids (base64url of 33 random bytes). */
export function inboundMsgid(): string {
  return randomBytes(33).toString('base64url');
}

const nowS = (): number => Math.floor(Date.now() / 1000);

interface LogEntry {
  seq: number;
  item: Record<string, unknown>;
}

/** Where a message belongs: top-level fields, or inside `event` for msgtype=event. */
function routing(item: Record<string, unknown>): { kfid?: string; user?: string } {
  const ev = item.event as Record<string, unknown> | undefined;
  const kfid = item.open_kfid ?? ev?.open_kfid;
  const user = item.external_userid ?? ev?.external_userid;
  return {
    kfid: typeof kfid === 'string' ? kfid : undefined,
    user: typeof user === 'string' ? user : undefined,
  };
}

const customerKey = (kfid: string, user: string): string => `${kfid}\u0000${user}`;

/** The mutable store behind one fake instance. */
export class KfState {
  /** customers that wrote (customer/batchget knows only them) */
  readonly customersSeen: Set<string>;
  /** nicknames customer/batchget answers with; unset: `顾客<last 4 of the id>` */
  readonly nicknames: Map<string, string>;
  private readonly log: LogEntry[] = [];
  private readonly cursorKey = randomBytes(32);
  private readonly syncTokens = new Map<string, number>(); // token -> expiry (ms)
  private readonly welcomeCodes = new Map<
    string,
    { expires: number; used: boolean; open_kfid: string; external_userid: string }
  >();
  private readonly usedMsgids = new Set<string>(); // `${open_kfid}\0${msgid}`
  /** Per (open_kfid, external_userid): last customer message send_time (s) and sends since then. */
  private readonly customers = new Map<string, { lastMsgS: number; sends: number }>();
  private readonly emptyPages: Array<string | undefined> = [];
  /** Accepted outbound messages, in order (exposed as `fake.sent`). */
  readonly sent: SentMessage[] = [];
  /** Successful media/upload calls, in order (exposed as `fake.uploads`). */
  readonly uploads: KfUpload[] = [];
  /** service_state and msg_codes per conversation. */
  readonly conversations: KfConversations;
  /** Temporary media (uploads and test-added media). */
  readonly media = new MediaStore(wecomMediaId);

  /** @param servicers userids currently receiving; a `trans` to state 3 must name one. */
  constructor(servicers: readonly string[] = ['zhangsan']) {
    this.conversations = new KfConversations(servicers);
    this.customersSeen = new Set();
    this.nicknames = new Map();
  }

  /**
   * Appends one item to the global log; fills msgid/send_time. A customer message (origin 3) resets the budget
   * and starts a new conversation (state 0) when there is none or it ended (4); an enter_session event makes an
   * unknown customer known in state 4.
   */
  add(item: Record<string, unknown>): string {
    const full: Record<string, unknown> = { ...item };
    if (typeof full.msgid !== 'string' || full.msgid === '') full.msgid = inboundMsgid();
    if (typeof full.send_time !== 'number') full.send_time = nowS();
    this.log.push({ seq: this.log.length, item: full });
    const { kfid, user } = routing(full);
    if (full.origin === 3 && kfid !== undefined && user !== undefined) {
      const key = customerKey(kfid, user);
      const prev = this.customers.get(key);
      const sendTime = full.send_time as number;
      this.customers.set(key, { lastMsgS: Math.max(prev?.lastMsgS ?? 0, sendTime), sends: 0 });
      this.conversations.customerWrote(kfid, user);
      this.customersSeen.add(user);
    }
    const ev = full.event;
    if (full.msgtype === 'event' && isObj(ev) && ev.event_type === 'enter_session' && kfid !== undefined && user !== undefined) {
      this.conversations.entered(kfid, user);
    }
    return full.msgid as string;
  }

  /** Issues a sync Token valid for 10 minutes. */
  issueSyncToken(): string {
    const token = randomBytes(24).toString('base64url');
    this.syncTokens.set(token, Date.now() + SYNC_TOKEN_TTL_MS);
    return token;
  }

  expireSyncTokens(): void {
    for (const t of this.syncTokens.keys()) this.syncTokens.set(t, 0);
  }

  /** Issues a single-use welcome_code valid for 20 seconds, for one customer of one kf account. */
  issueWelcomeCode(openKfid: string, user: string): string {
    const code = randomBytes(32).toString('base64url');
    const expires = Date.now() + WELCOME_CODE_TTL_MS;
    this.welcomeCodes.set(code, { expires, used: false, open_kfid: openKfid, external_userid: user });
    return code;
  }

  /** The next sync_msg page (for that open_kfid, or for any call when undefined) is empty with has_more 1. */
  insertEmptyPage(openKfid?: string): void {
    this.emptyPages.push(openKfid);
  }

  // ---- cursors: base64url(seq u32 ‖ salt[7] ‖ HMAC(key, seq ‖ salt ‖ open_kfid scope)[0..10]) = 28 chars ----

  private mac(head: Buffer, scope: string): Buffer {
    return createHmac('sha256', this.cursorKey).update(head).update(scope, 'utf8').digest().subarray(0, 10);
  }

  private encodeCursor(seq: number, scope: string): string {
    const head = Buffer.alloc(11);
    head.writeUInt32BE(seq, 0);
    randomBytes(7).copy(head, 4);
    return Buffer.concat([head, this.mac(head, scope)]).toString('base64url');
  }

  /** The position a cursor points at, or null when it was not issued by this fake for this open_kfid scope. */
  private decodeCursor(cursor: string, scope: string): number | null {
    if (!/^[A-Za-z0-9_-]{28}$/.test(cursor)) return null;
    const raw = Buffer.from(cursor, 'base64url');
    if (raw.length !== 21) return null;
    const head = raw.subarray(0, 11);
    if (!timingSafeEqual(raw.subarray(11), this.mac(head, scope))) return null;
    const seq = head.readUInt32BE(0);
    return seq <= this.log.length ? seq : null;
  }

  /**
   * One sync_msg page. `limit` is already validated (1..1000). Errors: 95007 for a Token that was never issued
   * or expired; 95000 ("invalid cursor", code unconfirmed) for a cursor this fake did not issue for this scope.
   */
  private syncPage(req: { cursor?: string; token?: string; limit: number; open_kfid?: string }, pageSize: number):
    | ApiError
    | { next_cursor: string; has_more: 0 | 1; msg_list: Array<Record<string, unknown>> } {
    if (req.token !== undefined) {
      const exp = this.syncTokens.get(req.token);
      if (exp === undefined || exp <= Date.now()) return { errcode: 95007, errmsg: 'invalid msg token' };
    }
    const scope = req.open_kfid ?? '';
    let pos = 0;
    if (req.cursor !== undefined && req.cursor !== '') {
      const p = this.decodeCursor(req.cursor, scope);
      if (p === null) return { errcode: 95000, errmsg: 'invalid cursor' };
      pos = p;
    }
    const emptyIdx = this.emptyPages.findIndex((k) => k === undefined || k === req.open_kfid);
    if (emptyIdx >= 0) {
      this.emptyPages.splice(emptyIdx, 1);
      return { next_cursor: this.encodeCursor(pos, scope), has_more: 1, msg_list: [] };
    }
    const max = Math.min(req.limit, pageSize);
    const oldest = nowS() - RETENTION_S;
    const matches = (e: LogEntry): boolean =>
      (req.open_kfid === undefined || routing(e.item).kfid === req.open_kfid) &&
      (e.item.send_time as number) >= oldest;
    const msgList: Array<Record<string, unknown>> = [];
    let next = pos;
    while (next < this.log.length && msgList.length < max) {
      const e = this.log[next]!;
      next += 1;
      if (matches(e)) msgList.push(structuredClone(e.item));
    }
    // Skip non-matching entries so an idle account's cursor does not rescan other accounts' traffic.
    while (next < this.log.length && !matches(this.log[next]!)) next += 1;
    const hasMore = next < this.log.length ? 1 : 0;
    return { next_cursor: this.encodeCursor(next, scope), has_more: hasMore, msg_list: msgList };
  }

  /** Rejects a bad outbound msgid: over 32 bytes, a char outside `[0-9A-Za-z_-]`, or a repeat on this account. */
  private checkMsgid(openKfid: string, msgid: string): ApiError | null {
    if (Buffer.byteLength(msgid, 'utf8') > 32) return { errcode: 40058, errmsg: 'msgid exceed max length' };
    if (!/^[0-9A-Za-z_-]*$/.test(msgid)) return { errcode: 40058, errmsg: 'invalid msgid' };
    if (this.usedMsgids.has(`${openKfid}\u0000${msgid}`)) {
      return { errcode: 40058, errmsg: 'invalid msgid: duplicate msgid' };
    }
    return null;
  }

  /**
   * Budget, window and state check for send_msg (does not consume): 40096 if the customer never wrote to this
   * account; 95018 conversation not in state 0/1; 95002 window; 95001 budget.
   */
  private checkSendAllowed(openKfid: string, user: string): ApiError | null {
    const c = this.customers.get(customerKey(openKfid, user));
    if (c === undefined) return { errcode: 40096, errmsg: 'invalid external_userid' };
    const state = this.conversations.checkSend(openKfid, user);
    if (state) return state;
    if (c.lastMsgS < nowS() - SEND_WINDOW_S) return { errcode: 95002, errmsg: 'send msg time limit' };
    if (c.sends >= SEND_BUDGET) return { errcode: 95001, errmsg: 'send msg count limit' };
    return null;
  }

  /** Records an accepted send_msg: claims the msgid and spends one unit of the customer's budget. */
  private commitSend(openKfid: string, user: string, msgid: string): void {
    this.usedMsgids.add(`${openKfid}\u0000${msgid}`);
    const c = this.customers.get(customerKey(openKfid, user));
    if (c !== undefined) c.sends += 1;
  }

  /** Validates a send_msg_on_event code (95016 for unknown, used or expired; code unconfirmed). */
  private checkCode(code: string): ApiError | null {
    const w = this.welcomeCodes.get(code);
    if (w === undefined) return { errcode: 95016, errmsg: 'invalid code' };
    if (w.used) return { errcode: 95016, errmsg: 'invalid code: already used' };
    if (w.expires <= Date.now()) return { errcode: 95016, errmsg: 'invalid code: expired' };
    return null;
  }

  /** Marks a code used and claims the msgid on the code's kf account. */
  private commitCode(code: string, msgid: string): void {
    const w = this.welcomeCodes.get(code);
    if (w === undefined) return;
    w.used = true;
    this.usedMsgids.add(`${w.open_kfid}\u0000${msgid}`);
  }

  /** The kf account and customer an issued code belongs to ('' when the code is unknown). */
  codeOwner(code: string): { open_kfid: string; external_userid: string } {
    const w = this.welcomeCodes.get(code);
    return { open_kfid: w?.open_kfid ?? '', external_userid: w?.external_userid ?? '' };
  }

  // ---- API handlers: validated request body -> answer ----

  /** `POST /cgi-bin/kf/sync_msg`. */
  syncMsg(b: Record<string, unknown>, pageSize: number): Answer {
    const limit = b.limit ?? 0;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > 1000) {
      return err(40058, 'invalid limit');
    }
    if (b.voice_format !== undefined && b.voice_format !== 0 && b.voice_format !== 1) {
      return err(40058, 'invalid voice_format');
    }
    if (b.open_kfid !== undefined && !nonEmpty(b.open_kfid)) return err(95000, 'invalid open_kfid');
    if (b.cursor !== undefined && typeof b.cursor !== 'string') return err(95000, 'invalid cursor');
    if (b.token !== undefined && typeof b.token !== 'string') return err(95007, 'invalid msg token');
    const page = this.syncPage(
      {
        cursor: b.cursor as string | undefined,
        token: b.token === '' ? undefined : (b.token as string | undefined),
        limit: limit === 0 ? 1000 : limit,
        open_kfid: b.open_kfid as string | undefined,
      },
      pageSize,
    );
    return 'msg_list' in page ? { errcode: 0, errmsg: 'ok', ...page } : fail(page);
  }

  /** `POST /cgi-bin/kf/send_msg`; `at` (epoch ms) is recorded in `sent`. */
  sendMsg(b: Record<string, unknown>, at: number): Answer {
    if (!nonEmpty(b.touser)) return err(40003, 'invalid touser');
    if (!nonEmpty(b.open_kfid)) return err(95000, 'invalid open_kfid');
    const msgid = this.checkOutbound(b.open_kfid, b, SEND_TYPES);
    if (typeof msgid !== 'string') return msgid;
    const msgtype = b.msgtype as string;
    let mediaId: string | undefined;
    if (MEDIA_SEND_TYPES.has(msgtype)) {
      const m = this.media.get((b[msgtype] as Record<string, unknown>).media_id, Date.now());
      if (m === undefined) return err(40007, 'invalid media_id');
      mediaId = m.media_id;
    }
    const denied = this.checkSendAllowed(b.open_kfid, b.touser);
    if (denied) return fail(denied);
    this.commitSend(b.open_kfid, b.touser, msgid);
    this.conversations.botSent(b.open_kfid, b.touser);
    const content = textOf(b);
    this.sent.push({
      api: 'send_msg', open_kfid: b.open_kfid, touser: b.touser, msgid, msgtype,
      ...(content !== undefined && { content }), ...(mediaId !== undefined && { media_id: mediaId }), at,
    });
    return { errcode: 0, errmsg: 'ok', msgid };
  }

  /**
   * `POST /cgi-bin/kf/send_msg_on_event` with a welcome_code or a msg_code; `sent` gets the code's
   * open_kfid/customer as open_kfid/touser. msg_codes: see KfConversations.checkCode.
   */
  sendMsgOnEvent(b: Record<string, unknown>, at: number): Answer {
    if (!nonEmpty(b.code)) return err(95016, 'invalid code');
    if (this.conversations.isMsgCode(b.code)) return this.sendWithMsgCode(b.code, b, at);
    const owner = this.codeOwner(b.code);
    const msgid = this.checkOutbound(owner.open_kfid, b, EVENT_SEND_TYPES);
    if (typeof msgid !== 'string') return msgid;
    const bad = this.checkCode(b.code);
    if (bad) return fail(bad);
    this.commitCode(b.code, msgid);
    const content = textOf(b);
    this.sent.push({
      api: 'send_msg_on_event', open_kfid: owner.open_kfid, touser: owner.external_userid, msgid,
      msgtype: b.msgtype as string, ...(content !== undefined && { content }), code: b.code, at,
    });
    return { errcode: 0, errmsg: 'ok', msgid };
  }

  /** send_msg_on_event with a msg_code from service_state/trans or a session_status_change event. */
  private sendWithMsgCode(code: string, b: Record<string, unknown>, at: number): Answer {
    const owner = this.conversations.codeOwner(code)!;
    const msgid = this.checkOutbound(owner.open_kfid, b, EVENT_SEND_TYPES);
    if (typeof msgid !== 'string') return msgid;
    const bad = this.conversations.checkCode(code, b.msgtype as string, Date.now());
    if (bad) return fail(bad);
    this.conversations.useCode(code);
    this.usedMsgids.add(`${owner.open_kfid}\u0000${msgid}`);
    const content = textOf(b);
    this.sent.push({
      api: 'send_msg_on_event', open_kfid: owner.open_kfid, touser: owner.external_userid, msgid,
      msgtype: b.msgtype as string, ...(content !== undefined && { content }), code, at,
    });
    return { errcode: 0, errmsg: 'ok', msgid };
  }

  /**
   * `POST /cgi-bin/kf/service_state/get` → `{service_state, servicer_userid?}` (servicer only in state 3).
   * 95000 open_kfid missing; 40096 external_userid missing or never seen on this kf account (unconfirmed).
   */
  /**
   * `POST /cgi-bin/kf/customer/batchget` (kf §5.2) → `customer_list` of `{external_userid, nickname, avatar, gender,
   * unionid}` for customers that wrote to any account, `invalid_external_userid` for the rest. A customer's nickname
   * is `nicknames.get(id)`, else `顾客<last 4 characters of the id>`. 40058 when the list is missing or over 100.
   */
  customerBatchget(b: Record<string, unknown>): Answer {
    const ids = b.external_userid_list;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > 100) return err(40058, 'invalid external_userid_list');
    const known = ids.filter((id): id is string => typeof id === 'string' && this.customersSeen.has(id));
    return {
      errcode: 0,
      errmsg: 'ok',
      customer_list: known.map((id) => ({ external_userid: id, nickname: this.nicknames.get(id) ?? `顾客${id.slice(-4)}`, avatar: '', gender: 0, unionid: '' })),
      invalid_external_userid: ids.filter((id) => !known.includes(id as string)),
    };
  }

  serviceStateGet(b: Record<string, unknown>): Answer {
    if (!nonEmpty(b.open_kfid)) return err(95000, 'invalid open_kfid');
    if (!nonEmpty(b.external_userid)) return err(40096, 'invalid external_userid');
    const s = this.conversations.get(b.open_kfid, b.external_userid);
    if (s === undefined) return err(40096, 'invalid external_userid');
    return { errcode: 0, errmsg: 'ok', ...s };
  }

  /**
   * `POST /cgi-bin/kf/service_state/trans` → `{msg_code?}`. 95000 open_kfid missing; 40096 external_userid
   * missing/unknown; 40058 service_state not an integer 0..4 (unconfirmed); then KfConversations.trans rules
   * (40058 no servicer for 3, 95014 servicer not receiving, 95016 move not allowed).
   */
  serviceStateTrans(b: Record<string, unknown>, now: number): Answer {
    if (!nonEmpty(b.open_kfid)) return err(95000, 'invalid open_kfid');
    if (!nonEmpty(b.external_userid)) return err(40096, 'invalid external_userid');
    const to = b.service_state;
    if (typeof to !== 'number' || !Number.isInteger(to) || to < 0 || to > 4) return err(40058, 'invalid service_state');
    const servicer = typeof b.servicer_userid === 'string' ? b.servicer_userid : undefined;
    const r = this.conversations.trans(b.open_kfid, b.external_userid, to as ServiceState, servicer, now);
    return 'errcode' in r ? fail(r) : { errcode: 0, errmsg: 'ok', ...r };
  }

  /**
   * `POST /cgi-bin/media/upload?type=…` after auth, with the parsed multipart parts (null when the body is not
   * multipart/form-data or is malformed). In order: 40005 `type` missing or not image|voice|video|file ("invalid
   * type", WeCom's code for a bad type parameter); 47001 not multipart (unconfirmed); 41005 no `media` part
   * (unconfirmed, WeChat's "media data missing"); 47001 more than one `media` part (unconfirmed); 40004 `media`
   * without a filename or with an extension the type does not accept; 40006 size ≤ 5 bytes or over the type's
   * limit. Success: `{errcode: 0, errmsg: 'ok', type, media_id, created_at}` with created_at a STRING of unix
   * seconds (as WeCom sends it). `at` is epoch ms.
   */
  upload(type: string | undefined, parts: FormPart[] | null, at: number): Answer {
    const rule = type === undefined ? undefined : KF_MEDIA_RULES[type];
    if (type === undefined || rule === undefined) return err(40005, 'invalid type');
    if (parts === null) return err(47001, 'data format error');
    const media = parts.filter((p) => p.name === 'media');
    if (media.length === 0) return err(41005, 'media data missing');
    if (media.length > 1) return err(47001, 'data format error: more than one media part');
    const part = media[0]!;
    if (part.filename === undefined || part.filename === '') return err(40004, 'invalid media type: filename missing');
    if (rule.exts !== null && !rule.exts.has(extensionOf(part.filename))) return err(40004, 'invalid media type');
    if (part.bytes.length < KF_MEDIA_MIN_BYTES || part.bytes.length > rule.maxBytes) return err(40006, 'invalid file size');
    const item = this.media.put({ type, filename: part.filename, contentType: part.contentType, bytes: part.bytes }, at);
    this.uploads.push({ type, media_id: item.media_id, filename: item.filename, contentType: item.contentType, bytes: item.bytes, at });
    return { errcode: 0, errmsg: 'ok', type, media_id: item.media_id, created_at: String(Math.floor(at / 1000)) };
  }

  /**
   * `GET /cgi-bin/media/get?media_id=…` after auth: the medium, or an error answer: 40007 unknown, missing or
   * older than 3 days; 830002 over 20 MB requested without a Range header.
   */
  download(mediaId: string | undefined, hasRange: boolean, now: number): MediaItem | Answer {
    const item = this.media.get(mediaId, now);
    if (item === undefined) return err(40007, 'invalid media_id');
    if (!hasRange && item.bytes.length > KF_MEDIA_GET_MAX_BYTES) return err(830002, 'file size over 20M, use Range to download');
    return item;
  }

  /** msgid + msgtype + text rules shared by both send APIs; returns the effective msgid or the error answer. */
  private checkOutbound(kfid: string, b: Record<string, unknown>, types: Set<string>): Answer | string {
    let msgid = b.msgid;
    if (msgid === undefined || msgid === '') msgid = randomBytes(16).toString('base64url');
    else if (typeof msgid !== 'string') return err(40058, 'invalid msgid');
    else {
      const bad = this.checkMsgid(kfid, msgid);
      if (bad) return fail(bad);
    }
    if (typeof b.msgtype !== 'string' || !types.has(b.msgtype)) return err(40008, 'invalid message type');
    const payload = b[b.msgtype];
    if (!isObj(payload)) return err(40058, `invalid parameter: ${b.msgtype} missing`);
    if (b.msgtype === 'text') {
      if (!nonEmpty(payload.content)) return err(44004, 'empty content');
      if (Buffer.byteLength(payload.content, 'utf8') > 2048) return err(45002, 'content size out of limit');
    }
    return msgid as string;
  }
}

function textOf(b: Record<string, unknown>): string | undefined {
  const t = b.text;
  return isObj(t) && typeof t.content === 'string' ? t.content : undefined;
}
