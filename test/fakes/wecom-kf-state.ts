/**
 * State of the fake WeCom kf API (see wecom-kf.ts): the global message log with opaque cursors, sync Tokens,
 * welcome codes, outbound msgid registry and the per-customer send budget. No I/O here; the HTTP layer in
 * wecom-kf.ts turns the results into WeCom-shaped JSON answers. Protocol: shared/docs/wecom-kf-protocol.md.
 *
 * Units: `send_time` is unix SECONDS (like WeCom); every other time in this module is epoch milliseconds.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A WeCom JSON answer: `errcode` (0 = ok), `errmsg`, and the API's fields. */
export type Answer = Record<string, unknown> & { errcode: number; errmsg: string };
/** A WeCom error: `errcode` (never 0) and a short errmsg text. */
export interface ApiError {
  errcode: number;
  errmsg: string;
}

/** An accepted outbound message. `at` is epoch ms; `code` only for send_msg_on_event. */
export interface SentMessage {
  api: 'send_msg' | 'send_msg_on_event';
  open_kfid?: string;
  touser?: string;
  msgid: string;
  msgtype: string;
  content?: string;
  code?: string;
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

  /** Appends one item to the global log; fills msgid/send_time; a customer message (origin 3) resets the budget. */
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

  /** Budget and window check for send_msg (does not consume). 40096 if the customer never wrote to this account. */
  private checkSendAllowed(openKfid: string, user: string): ApiError | null {
    const c = this.customers.get(customerKey(openKfid, user));
    if (c === undefined) return { errcode: 40096, errmsg: 'invalid external_userid' };
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
    const denied = this.checkSendAllowed(b.open_kfid, b.touser);
    if (denied) return fail(denied);
    this.commitSend(b.open_kfid, b.touser, msgid);
    const content = textOf(b);
    this.sent.push({
      api: 'send_msg', open_kfid: b.open_kfid, touser: b.touser, msgid, msgtype: b.msgtype as string,
      ...(content !== undefined && { content }), at,
    });
    return { errcode: 0, errmsg: 'ok', msgid };
  }

  /** `POST /cgi-bin/kf/send_msg_on_event`; `sent` gets the code's open_kfid/customer as open_kfid/touser. */
  sendMsgOnEvent(b: Record<string, unknown>, at: number): Answer {
    if (!nonEmpty(b.code)) return err(95016, 'invalid code');
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
