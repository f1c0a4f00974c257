/**
 * A strict fake of the WeCom kf API over real HTTP (127.0.0.1, random port) plus helpers that build and post
 * kf callbacks exactly as WeCom sends them. Protocol: docs/protocols.md (kf §2 pull, §3 send, §4
 * conversation state, §5.3 media, §5.4 tokens, §7 errcodes). Point the server's `WECOM_API_BASE_URL` at `fake.url`.
 *
 * Answers are HTTP 200 JSON `{errcode, errmsg, ...}` like WeCom; unknown paths get HTTP 404. Error codes, checked
 * in this order (those marked "unconfirmed" are our pick where WeCom publishes none; decide on errcode, never
 * on errmsg):
 *  - gettoken: 41002 corpid missing, 41004 corpsecret missing, 40013 wrong corpid, 40001 wrong secret.
 *  - any API: 41001 access_token missing, 40014 unknown, 42001 expired; 47001 body not a JSON object;
 *    43002 wrong HTTP method (unconfirmed).
 *  - sync_msg: 40058 "invalid limit" for limit not an integer in 0..1000 (0/absent = 1000) and for a bad
 *    voice_format (unconfirmed); 95007 Token never issued or expired; 95000 "invalid cursor" for a cursor this
 *    fake did not issue for this same open_kfid scope (unconfirmed); 95000 for an empty/non-string open_kfid.
 *  - send_msg: 40003 touser missing (unconfirmed); 95000 open_kfid missing; 40058 msgid over 32 bytes ("msgid
 *    exceed max length"), outside [0-9A-Za-z_-] ("invalid msgid") or already used on this open_kfid ("invalid
 *    msgid: duplicate msgid" — WeCom's code for a repeat is unpublished); 40008 unknown msgtype; 40058 body
 *    object for the msgtype missing; 44004 empty text; 45002 text over 2048 UTF-8 bytes; 40007 image/voice/
 *    video/file whose `media_id` is not a live medium of this fake (uploaded or addMedia, < 3 days); 40096 touser
 *    never wrote to this open_kfid; 95018 conversation not in state 0/1; 95002 customer's last message older
 *    than 48 h (unconfirmed); 95001 sixth send since the customer's last message. A success in state 0 moves the
 *    conversation to 1.
 *  - send_msg_on_event: same msgid/text rules (msgid scoped to the code's open_kfid); msgtype only text|msgmenu
 *    (else 40008); 95016 code missing, never issued, used, or older than 20 s (unconfirmed). Welcome sends do
 *    not spend the customer's 5-message budget. msg_codes (from trans or session_status_change): 40008 msgmenu
 *    with a queue/servicer code (text only); 95016 used, or older than 48 h (queue/servicer) / 20 s (ended);
 *    95018 the conversation is no longer in the state that produced the code (unconfirmed).
 *  - service_state/get: 95000 open_kfid missing; 40096 external_userid missing or never seen (unconfirmed).
 *    Conversations: a customer message (origin 3) makes an unknown or ended one state 0; an enter_session event
 *    makes an unknown customer state 4 ("not started"); conversations never time out by themselves.
 *  - service_state/trans: 95000; 40096; 40058 service_state not an integer 0..4; 40058 state 3 without
 *    servicer_userid; 95014 servicer_userid not in `servicers` (unconfirmed); 95016 "invalid state transfer"
 *    for a move outside kf §4.1 (0→1|2|3, 1→2|3, 2→3, 3→3 another servicer, 3→4), code unconfirmed. `msg_code`
 *    comes back the first time a conversation moves to 2, the first time it moves to 3, and on every move to 4.
 *    API moves append no event to the message log; the test controls servicerTakes/endSession do.
 *  - media/upload (multipart/form-data, file part `media`): 40005 `type` missing or not image|voice|video|file;
 *    47001 body not multipart/form-data or malformed (unconfirmed); 41005 no `media` part (unconfirmed); 47001
 *    two `media` parts (unconfirmed); 40004 no filename, or an extension outside image jpg|jpeg|png, voice amr,
 *    video mp4 (file: any); 40006 size ≤ 5 bytes or over image 10 MB / voice 2 MB / video 10 MB / file 20 MB.
 *    Success `{errcode, errmsg, type, media_id, created_at}` with created_at a STRING (unix seconds). The body
 *    limit is 21 MB on this route (HTTP 413 beyond), 1 MB elsewhere.
 *  - media/get: the bytes (HTTP 200, stored Content-Type, `Content-disposition: attachment; filename="…"`,
 *    single `Range: bytes=…` → 206) or HTTP 200 JSON errors: 40007 media_id unknown/expired (3 days); 830002 a
 *    medium over 20 MB without Range.
 * failNext answers come before everything (even auth). holdSends holds only send_msg calls that passed auth and
 * JSON parsing.
 * State changes happen when a request arrives; `setDelay` only holds back the answer (so a client that times
 * out on an accepted send and retries with the same msgid gets 40058 duplicate, as WeCom would).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { computeSignature, encrypt, parseEncodingAesKey } from '../../src/crypto/wxbizmsgcrypt.js';
import { MAX_UPLOAD_BODY, describeParts, isMediaItem, parseMultipart, typeFromContentType, writeMedia } from './fake-media.js';
import { KfState, err, isObj, nonEmpty, type Answer, type KfUpload, type SentMessage } from './wecom-kf-state.js';
import type { ServiceState } from './wecom-kf-service-state.js';

export type { KfUpload, SentMessage } from './wecom-kf-state.js';
export type { ServiceState } from './wecom-kf-service-state.js';

export interface FakeWecomOptions {
  corpId: string;
  kfSecret: string;
  /** access_token `expires_in` in seconds; default 7200. A token is refused with 42001 after that. */
  tokenTtlS?: number;
  /** Max items per sync_msg page (also capped by the request's limit); default 1000. */
  pageSize?: number;
  /** userids currently receiving; `service_state/trans` to state 3 must name one of them. Default `['zhangsan']`. */
  servicers?: string[];
}

export type FakeApi =
  | 'gettoken'
  | 'sync_msg'
  | 'send_msg'
  | 'send_msg_on_event'
  | 'service_state_get'
  | 'service_state_trans'
  | 'media_upload'
  | 'media_get'
  | 'customer_batchget';

export interface FakeWecom {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  /**
   * Adds a customer text (origin 3 unless given; send_time unix SECONDS, default now; `menu_id` when the text is a
   * click on a menu item). Returns the 44-char msgid.
   */
  addCustomerText(p: {
    open_kfid: string;
    external_userid: string;
    content: string;
    menu_id?: string;
    send_time?: number;
    origin?: number;
  }): string;
  /**
   * Adds a customer message of any msgtype: `{open_kfid, external_userid, send_time, origin (default 3), msgtype,
   * [msgtype]: body}`, e.g. `('image', {media_id})`, `('voice', {media_id})`, `('file', {media_id})`,
   * `('location', {latitude, longitude, name, address})`, `('link', {title, desc, url, pic_url})`,
   * `('merged_msg', {title, item: [...]})`, `('text', {content, menu_id})`. send_time unix SECONDS (default now).
   * Returns the 44-char msgid.
   */
  addCustomerMessage(p: {
    open_kfid: string;
    external_userid: string;
    msgtype: string;
    body: Record<string, unknown>;
    send_time?: number;
    origin?: number;
  }): string;
  /** Adds any msg_list item as is; fills msgid (if absent) and send_time (now, seconds). origin 3 resets the budget. */
  addMessage(item: Record<string, unknown>): string;
  /**
   * Adds an event item `{origin: 4, msgtype: 'event', event}` (open_kfid/external_userid belong inside `event`),
   * e.g. `{event_type: 'msg_send_fail', open_kfid, external_userid, fail_msgid, fail_type}` or
   * `{event_type: 'user_recall_msg', open_kfid, external_userid, recall_msgid}`. send_time unix SECONDS (default
   * now). Returns the msgid. Throws when `event.event_type` is not a non-empty string.
   */
  addEvent(event: Record<string, unknown>, send_time?: number): string;
  /**
   * A servicer takes the conversation: state 3, and a `session_status_change` event in the log — change_type 1
   * from the queue (with a 48 h `msg_code`, text only), 4 when it was ended (reopened), else 2 (transferred; with
   * `old_servicer_userid` when another servicer held it). Returns the event's msgid and msg_code. Throws for a
   * customer the fake never saw on this kf account.
   */
  servicerTakes(open_kfid: string, external_userid: string, servicer_userid: string): { msgid: string; msg_code?: string };
  /**
   * The conversation ends: state 4, and a `session_status_change` change_type 3 event with a 20 s goodbye
   * `msg_code` (text or msgmenu). The customer's next message starts a new conversation in state 0. Throws for an
   * unknown customer or one already in state 4.
   */
  endSession(open_kfid: string, external_userid: string): { msgid: string; msg_code: string };
  /** The conversation's service_state (undefined when the fake never saw this customer on this kf account). */
  serviceState(open_kfid: string, external_userid: string): ServiceState | undefined;
  /** Replaces the list of receiving servicers (see `servicers` option). */
  setServicers(userids: string[]): void;
  /**
   * Stores a medium as if a customer had sent it (or it had been uploaded) and returns its media_id (44 chars,
   * valid 3 days; downloadable with media/get, usable in send_msg). `type` defaults from the content type:
   * image/* → image, audio/* → voice, video/* → video, else file.
   */
  addMedia(bytes: Buffer, contentType: string, filename: string, type?: 'image' | 'voice' | 'video' | 'file'): string;
  /** Successful media/upload calls, in order; `at` is epoch ms. */
  uploads: KfUpload[];
  /** Adds an enter_session event (origin 4); with a welcome_code (single use, 20 s) when asked. */
  enterSession(p: {
    open_kfid: string;
    external_userid: string;
    withWelcomeCode: boolean;
    send_time?: number;
    scene?: string;
    scene_param?: string;
  }): { msgid: string; welcome_code?: string };
  /** A callback Token accepted by sync_msg for 10 minutes. */
  issueSyncToken(): string;
  /** Every sync Token issued so far now answers 95007. */
  expireSyncTokens(): void;
  /** Every access_token issued so far now answers 42001 (new gettoken calls give working ones). */
  expireAccessTokens(): void;
  /** The next valid sync_msg call (for that open_kfid, or any when omitted) gets an empty page with has_more 1. */
  insertEmptyPage(open_kfid?: string): void;
  /** Holds every later answer of that API for `ms` milliseconds (0 turns it off). */
  setDelay(api: FakeApi, ms: number): void;
  /** The next `times` (default 1) calls of `api` answer `errcode` before any other processing. */
  failNext(api: string, errcode: number, times?: number): void;
  /** Drops every failure still scripted by failNext. */
  clearFailures(): void;
  /** While on, send_msg requests are recorded in `held` and never answered (not in `sent`, not in `calls`). */
  holdSends(on: boolean): void;
  /** Accepted outbound messages, in order. */
  sent: SentMessage[];
  /** send_msg requests received while holdSends was on. `at` is epoch ms. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw request bodies, read freely by tests
  held: Array<{ body: any; at: number }>;
  /**
   * Every answered request: api is one of FakeApi, or the raw path for unknown paths (errcode -404, answered with
   * HTTP 404). body is the parsed JSON (raw text if invalid, null for GET); for media/upload it is
   * `{parts: [{name, filename?, contentType, size}]}` (the raw text when not multipart). errcode is 0 for a
   * media/get that returned bytes. `at` is arrival time in epoch ms.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw request bodies, read freely by tests
  calls: Array<{ api: string; query: Record<string, string>; body: any; errcode: number; at: number }>;
  gettokenCount(): number;
  /** Polls `predicate` every 10 ms; rejects after `timeoutMs` (default 5000) with a message naming the wait. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const ROUTES: Record<string, { api: FakeApi; method: 'GET' | 'POST' }> = {
  '/cgi-bin/gettoken': { api: 'gettoken', method: 'GET' },
  '/cgi-bin/kf/sync_msg': { api: 'sync_msg', method: 'POST' },
  '/cgi-bin/kf/send_msg': { api: 'send_msg', method: 'POST' },
  '/cgi-bin/kf/send_msg_on_event': { api: 'send_msg_on_event', method: 'POST' },
  '/cgi-bin/kf/service_state/get': { api: 'service_state_get', method: 'POST' },
  '/cgi-bin/kf/service_state/trans': { api: 'service_state_trans', method: 'POST' },
  '/cgi-bin/media/upload': { api: 'media_upload', method: 'POST' },
  '/cgi-bin/media/get': { api: 'media_get', method: 'GET' },
  '/cgi-bin/kf/customer/batchget': { api: 'customer_batchget', method: 'POST' },
};
const MAX_BODY = 1024 * 1024;

/** Starts the fake on 127.0.0.1 with a random port. */
export async function startFakeWecom(opts: FakeWecomOptions): Promise<FakeWecom> {
  const ttlMs = (opts.tokenTtlS ?? 7200) * 1000;
  const pageSize = opts.pageSize ?? 1000;
  const state = new KfState(opts.servicers ?? ['zhangsan']);
  const accessTokens = new Map<string, number>(); // token -> expiry (ms)
  const delays = new Map<string, number>();
  const failures = new Map<string, Array<number>>();
  const openHeld = new Set<http.ServerResponse>();
  let holding = false;
  let tokenCount = 0;
  const held: FakeWecom['held'] = [];
  const calls: FakeWecom['calls'] = [];

  function gettoken(q: Record<string, string>): Answer {
    if (!nonEmpty(q.corpid)) return err(41002, 'corpid missing');
    if (!nonEmpty(q.corpsecret)) return err(41004, 'corpsecret missing');
    if (q.corpid !== opts.corpId) return err(40013, 'invalid corpid');
    if (q.corpsecret !== opts.kfSecret) return err(40001, 'invalid credential');
    const token = randomBytes(75).toString('base64url');
    accessTokens.set(token, Date.now() + ttlMs);
    return { errcode: 0, errmsg: 'ok', access_token: token, expires_in: opts.tokenTtlS ?? 7200 };
  }

  function authorize(q: Record<string, string>): Answer | null {
    if (!nonEmpty(q.access_token)) return err(41001, 'access_token missing');
    const exp = accessTokens.get(q.access_token);
    if (exp === undefined) return err(40014, 'invalid access_token');
    if (exp <= Date.now()) return err(42001, 'access_token expired');
    return null;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = performance.timeOrigin + performance.now(); // epoch ms with sub-ms precision (latency figures)
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query = Object.fromEntries(url.searchParams);
    const route = ROUTES[url.pathname];
    const maxBody = route?.api === 'media_upload' ? MAX_UPLOAD_BODY : MAX_BODY;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > maxBody) return void res.writeHead(413).end();
      chunks.push(c);
    }
    const rawBytes = Buffer.concat(chunks);
    const raw = route?.api === 'media_upload' ? '' : rawBytes.toString('utf8');
    if (!route) {
      calls.push({ api: url.pathname, query, body: raw === '' ? null : raw, errcode: -404, at });
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
    const { api } = route;
    if (api === 'gettoken') tokenCount += 1;
    let body: unknown = req.method === 'GET' ? null : raw;
    let parsed: Record<string, unknown> | null = null;
    if (route.method === 'POST' && raw !== '') {
      try {
        body = JSON.parse(raw) as unknown;
        if (isObj(body)) parsed = body;
      } catch {
        /* stays raw */
      }
    }
    const parts = api === 'media_upload' ? await parseMultipart(req.headers['content-type'], rawBytes) : null;
    if (api === 'media_upload') body = parts === null ? rawBytes.toString('utf8') : { parts: describeParts(parts) };
    let answer: Answer | null;
    const scripted = failures.get(api);
    if (scripted && scripted.length > 0) answer = err(scripted.shift()!, 'scripted failure');
    else if (req.method !== route.method) answer = err(43002, `require ${route.method} method`);
    else if (api === 'gettoken') answer = gettoken(query);
    else answer = authorize(query);
    if (answer === null && api === 'media_upload') {
      answer = state.upload(query.type, parts, Date.now());
    } else if (answer === null && api === 'media_get') {
      const range = req.headers.range;
      const got = state.download(query.media_id, range !== undefined, Date.now());
      if (isMediaItem(got)) {
        calls.push({ api, query, body, errcode: 0, at });
        const delay = delays.get(api) ?? 0;
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (!res.destroyed) writeMedia(res, got, range, true);
        return;
      }
      answer = got;
    } else if (answer === null) {
      answer = parsed === null ? err(47001, 'data format error') : null;
    }
    if (answer === null && api === 'send_msg' && holding) {
      held.push({ body, at });
      openHeld.add(res);
      res.on('close', () => openHeld.delete(res));
      return;
    }
    if (answer === null && parsed !== null) {
      if (api === 'sync_msg') answer = state.syncMsg(parsed, pageSize);
      else if (api === 'send_msg') answer = state.sendMsg(parsed, at);
      else if (api === 'send_msg_on_event') answer = state.sendMsgOnEvent(parsed, at);
      else if (api === 'service_state_get') answer = state.serviceStateGet(parsed);
      else if (api === 'service_state_trans') answer = state.serviceStateTrans(parsed, Date.now());
      else if (api === 'customer_batchget') answer = state.customerBatchget(parsed);
    }
    const final = answer ?? err(-1, 'system error');
    calls.push({ api, query, body, errcode: final.errcode, at });
    const delay = delays.get(api) ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (res.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify(final));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      console.error('fake wecom: handler crashed', e);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    addCustomerText: (p) =>
      state.add({
        msgid: undefined,
        open_kfid: p.open_kfid,
        external_userid: p.external_userid,
        send_time: p.send_time,
        origin: p.origin ?? 3,
        msgtype: 'text',
        text: { content: p.content, ...(p.menu_id !== undefined && { menu_id: p.menu_id }) },
      }),
    addCustomerMessage: (p) =>
      state.add({
        msgid: undefined,
        open_kfid: p.open_kfid,
        external_userid: p.external_userid,
        send_time: p.send_time,
        origin: p.origin ?? 3,
        msgtype: p.msgtype,
        [p.msgtype]: structuredClone(p.body),
      }),
    addMessage: (item) => state.add(item),
    addEvent: (event, send_time) => {
      if (!nonEmpty(event.event_type)) throw new Error('fake wecom addEvent: event.event_type must be a non-empty string');
      return state.add({ send_time, origin: 4, msgtype: 'event', event: structuredClone(event) });
    },
    servicerTakes: (kfid, user, servicer) => {
      const event = state.conversations.servicerTakes(kfid, user, servicer, Date.now());
      const msgid = state.add({ origin: 4, msgtype: 'event', event });
      return typeof event.msg_code === 'string' ? { msgid, msg_code: event.msg_code } : { msgid };
    },
    endSession: (kfid, user) => {
      const event = state.conversations.endSession(kfid, user, Date.now());
      return { msgid: state.add({ origin: 4, msgtype: 'event', event }), msg_code: event.msg_code as string };
    },
    serviceState: (kfid, user) => state.conversations.get(kfid, user)?.service_state,
    setServicers: (userids) => {
      state.conversations.servicers = new Set(userids);
    },
    addMedia: (bytes, contentType, filename, type) =>
      state.media.put({ type: type ?? typeFromContentType(contentType), filename, contentType, bytes }).media_id,
    uploads: state.uploads,
    enterSession: (p) => {
      const welcome_code = p.withWelcomeCode ? state.issueWelcomeCode(p.open_kfid, p.external_userid) : undefined;
      const event: Record<string, unknown> = {
        event_type: 'enter_session',
        open_kfid: p.open_kfid,
        external_userid: p.external_userid,
        scene: p.scene ?? '',
        scene_param: p.scene_param ?? '',
        ...(welcome_code !== undefined && { welcome_code }),
      };
      const msgid = state.add({ send_time: p.send_time, origin: 4, msgtype: 'event', event });
      return welcome_code !== undefined ? { msgid, welcome_code } : { msgid };
    },
    issueSyncToken: () => state.issueSyncToken(),
    expireSyncTokens: () => state.expireSyncTokens(),
    expireAccessTokens: () => {
      for (const t of accessTokens.keys()) accessTokens.set(t, 0);
    },
    insertEmptyPage: (k) => state.insertEmptyPage(k),
    setDelay: (api, ms) => void delays.set(api, ms),
    failNext: (api, errcode, times = 1) => {
      failures.set(api, [...(failures.get(api) ?? []), ...Array<number>(times).fill(errcode)]);
    },
    clearFailures: () => failures.clear(),
    holdSends: (on) => {
      holding = on;
    },
    sent: state.sent,
    held,
    calls,
    gettokenCount: () => tokenCount,
    waitFor: async (predicate, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) {
          throw new Error(`fake wecom waitFor timed out after ${timeoutMs} ms: ${predicate.toString().slice(0, 200)}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: async () => {
      for (const res of openHeld) res.destroy();
      openHeld.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------- callbacks (WeCom → our server)

/** The kf callback configuration: Token, EncodingAESKey (43 chars) and the CorpID used as receiveid. */
export interface CallbackCreds {
  token: string;
  encodingAesKey: string;
  corpId: string;
}

const nonce = (): string => String(1_000_000_000 + Math.floor(Math.random() * 9_000_000_000));
const cdata = (v: string): string => `<![CDATA[${v}]]>`;

function signedQuery(creds: CallbackCreds, encrypted: string, timestamp: number, extra = ''): string {
  const n = nonce();
  const sig = computeSignature(creds.token, String(timestamp), n, encrypted);
  const e = encodeURIComponent;
  return `msg_signature=${e(sig)}&timestamp=${e(String(timestamp))}&nonce=${e(n)}${extra}`;
}

/**
 * An encrypted kf callback as WeCom posts it. `timestamp` is unix SECONDS (default now) and is both the query
 * timestamp and the inner CreateTime. `<Token>` / `<OpenKfId>` are omitted when `syncToken` / `open_kfid` are not
 * given (old setups; the server must then pull without a token). Returns the query string (no leading `?`) and
 * the XML body.
 */
export function buildKfCallback(
  creds: CallbackCreds,
  p: { open_kfid?: string; syncToken?: string; timestamp?: number },
): { query: string; body: string } {
  const ts = p.timestamp ?? Math.floor(Date.now() / 1000);
  const inner =
    `<xml><ToUserName>${cdata(creds.corpId)}</ToUserName><CreateTime>${ts}</CreateTime>` +
    `<MsgType>${cdata('event')}</MsgType><Event>${cdata('kf_msg_or_event')}</Event>` +
    (p.syncToken !== undefined ? `<Token>${cdata(p.syncToken)}</Token>` : '') +
    (p.open_kfid !== undefined ? `<OpenKfId>${cdata(p.open_kfid)}</OpenKfId>` : '') +
    `</xml>`;
  const enc = encrypt(parseEncodingAesKey(creds.encodingAesKey), inner, creds.corpId);
  const body =
    `<xml><ToUserName>${cdata(creds.corpId)}</ToUserName><Encrypt>${cdata(enc)}</Encrypt>` +
    `<AgentID>${cdata('')}</AgentID></xml>`;
  return { query: signedQuery(creds, enc, ts), body };
}

/** The query of WeCom's URL-verification GET: msg_signature, timestamp, nonce and the encrypted echostr. */
export function buildVerifyUrlQuery(creds: CallbackCreds, echoPlain: string): { query: string } {
  const ts = Math.floor(Date.now() / 1000);
  const echostr = encrypt(parseEncodingAesKey(creds.encodingAesKey), echoPlain, creds.corpId);
  return { query: signedQuery(creds, echostr, ts, `&echostr=${encodeURIComponent(echostr)}`) };
}

/**
 * POSTs a callback over real HTTP (node:http, no keep-alive) to `serverUrl + path + '?' + query`.
 * `ms` is wall time around the whole request/response (performance.now()).
 */
export function postCallback(
  serverUrl: string,
  path: string,
  cb: { query: string; body: string },
  contentType = 'text/xml',
): Promise<{ status: number; body: string; ms: number }> {
  const target = new URL(`${serverUrl}${path}${path.includes('?') ? '&' : '?'}${cb.query}`);
  const payload = Buffer.from(cb.body, 'utf8');
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      target,
      { method: 'POST', agent: false, headers: { 'content-type': contentType, 'content-length': payload.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const ms = performance.now() - started;
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
