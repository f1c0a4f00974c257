/**
 * A strict fake of the Official Account (公众号) API over real HTTP (127.0.0.1, random port). Point the server's
 * `WECHAT_MP_API_BASE_URL` at `fake.url`. Protocol: docs/protocols.md OA §6 (customer-service
 * messages, typing), §7 (access_token) and §8 (temporary media). State and rules live in wechat-mp-api-state.ts.
 *
 * Answers are HTTP 200 JSON like WeChat: errors `{errcode, errmsg}` (errmsg ends in `rid: …`), API successes
 * `{errcode: 0, errmsg: "ok"}`, token successes only `{access_token, expires_in}` with NO errcode (as WeChat
 * sends them). Unknown paths get HTTP 404. Error codes, in check order ("unconfirmed" = our pick where Tencent
 * publishes nothing; decide on errcode, never on errmsg):
 *  - every route: failNext answers first; then 43001 GET route called otherwise / 43002 POST route called
 *    otherwise.
 *  - GET /cgi-bin/token: 40002 grant_type ≠ client_credential; 41002 appid missing; 40013 wrong appid; 41004 secret
 *    missing; 40001 wrong secret (order unconfirmed). Each success issues a new token and leaves the previous
 *    classic tokens valid for 5 more minutes (then 40001).
 *  - POST /cgi-bin/stable_token: 47001 body not a JSON object; the same credential checks; with
 *    `force_refresh: true`, 45011 within 30 s of the last accepted force refresh (code unconfirmed: Tencent
 *    documents the 30 s spacing, not the code), else a new token and every earlier stable token answers 40001.
 *    Without it, the current token and its remaining `expires_in` (a new one when none, expired or in the last
 *    ttl/24 — WeChat renews 300 s of 7200 before expiry and the old one stays valid until it expires).
 *    Classic and stable tokens are independent.
 *  - every API below: 41001 access_token missing; 40001 token invalidated (force refresh / superseded classic);
 *    40014 unknown; 42001 expired.
 *  - POST /cgi-bin/message/custom/send: 48001 while `setUnauthorized(true)`; 47001 body not a JSON object;
 *    40003 touser missing or not 1..64 of [A-Za-z0-9_-] (real OpenIDs are 28); 40008 msgtype not one of text,
 *    image, voice, video, music, news, mpnews, mpnewsarticle, msgmenu, wxcard, miniprogrampage; text: 44004
 *    empty/missing `text.content`, 45002 over 2048 UTF-8 bytes (empirical limit); image/voice: 40007 media_id
 *    missing, unknown to this fake or older than 3 days (unconfirmed); other types: 47001 `[msgtype]` object missing, msgmenu without a `list` array
 *    (unconfirmed); 45015 user never interacted, unfollowed, or the last interaction is older than 48 h (message)
 *    / 1 minute (click, subscribe, scan); 45047 quota of the last interaction used up (5 after a message, 3 after
 *    the others; a new interaction resets it). An accepted send clears that user's typing indicator.
 *  - POST /cgi-bin/message/custom/typing: 48001; 47001; 40003 (unconfirmed for typing); 45072 command not
 *    Typing/CancelTyping; 45080 no interaction in the last 30 s, or unfollowed (unconfirmed for unfollowed);
 *    45081 Typing while an earlier Typing is active (15 s; cleared by CancelTyping or a send). CancelTyping with
 *    nothing active is accepted (unconfirmed).
 *  - POST /cgi-bin/media/upload?type=… (multipart/form-data, file part `media`; body limit 21 MB on this route,
 *    1 MB elsewhere, HTTP 413 beyond): 48001 while unauthorized; 40004 type missing or not
 *    image|voice|video|thumb; 41005 not multipart or no `media` part; 47001 two `media` parts (unconfirmed); 40005
 *    no filename or an extension outside image bmp|png|jpeg|jpg|gif, voice amr|mp3, video mp4, thumb jpg|jpeg;
 *    44001 empty; 40009 image > 2 MB, 40010 voice > 2 MB, 40011 video > 10 MB, 40012 thumb > 64 KB. Success
 *    `{type, media_id, created_at}` (no errcode; created_at a NUMBER of unix seconds; type thumb answers
 *    `thumb_media_id` instead of `media_id`, unconfirmed quirk).
 *  - GET /cgi-bin/media/get?media_id=…: the bytes (HTTP 200, stored Content-Type, `Content-disposition:
 *    attachment; filename="…"`) or HTTP 200 JSON `{errcode: 40007}` for a missing/unknown/expired (3 days)
 *    media_id. (Real WeChat answers JSON `{video_url}` for video media; this fake sends the bytes.)
 * State changes when a request arrives; `setDelay` only holds the answer back (so a client that times out on
 * an accepted send and retries has spent two units of quota, as on WeChat). Times are epoch ms from Date.now().
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_UPLOAD_BODY, describeParts, isMediaItem, parseMultipart, typeFromContentType, writeMedia, type FormPart } from './fake-media.js';
import {
  MpMedia, MpTokens, MpUsers, err, isObj, type Answer, type InteractionKind, type MpSentMessage, type MpUpload,
} from './wechat-mp-api-state.js';

export type { InteractionKind, MpSentMessage, MpUpload } from './wechat-mp-api-state.js';

export interface FakeMpApiOptions {
  appId: string;
  appSecret: string;
  /** access_token `expires_in` in seconds; default 7200. A token answers 42001 after that. */
  tokenTtlS?: number;
}

export type MpApi = 'token' | 'stable_token' | 'custom_send' | 'typing' | 'media_upload' | 'media_get';

export interface FakeMpApi {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  /**
   * Records what the user just did (the real platform learns it from the user; tests call this when they push a
   * message or event). `atMs` epoch ms, default now. Resets the quota and clears an unfollow.
   */
  userInteracted(openid: string, kind?: InteractionKind, atMs?: number): void;
  /** The user unfollowed: sends answer 45015 and typing 45080 until a new interaction. */
  unfollow(openid: string): void;
  /** While on, custom/send, custom/typing and media/upload answer 48001 (unverified / personal account). */
  setUnauthorized(on: boolean): void;
  /**
   * Stores a medium (as if uploaded) and returns its 64-char media_id, valid 3 days: downloadable with media/get,
   * usable in custom/send image/voice. `type` defaults from the content type: image/* → image, audio/* → voice,
   * video/* → video, else image.
   */
  addMedia(bytes: Buffer, contentType: string, filename: string, type?: 'image' | 'voice' | 'video' | 'thumb'): string;
  /** Successful media/upload calls, in order; `at` epoch ms. */
  uploads: MpUpload[];
  /** Every access_token issued so far answers 42001; new token calls give working ones. */
  expireAccessTokens(): void;
  /** The next `times` (default 1) calls of `api` answer `errcode` before any other processing. */
  failNext(api: MpApi, errcode: number, times?: number): void;
  /** Holds every later answer of `api` for `ms` milliseconds (0 turns it off); state still changes at arrival. */
  setDelay(api: MpApi, ms: number): void;
  /** Accepted custom/send messages, in order. */
  sent: MpSentMessage[];
  /** Every custom/typing request with its answer's errcode (a failNext one included); `at` epoch ms. */
  typing: Array<{ touser: unknown; command: unknown; errcode: number; at: number }>;
  /** Every stable_token request, whatever its answer. */
  stableTokenRequests: Array<{ force_refresh: boolean; errcode: number; at: number }>;
  /**
   * Every request: api is one of MpApi, or the raw path for unknown paths (errcode -404, HTTP 404). `query` is
   * the parsed query string; `body` the parsed JSON (the raw text when not JSON, null for GET/empty), for
   * media/upload `{parts: [{name, filename?, contentType, size}]}` (raw text when not multipart); errcode 0 for
   * successes, token, upload and media/get successes included. `at` is arrival time, epoch ms.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw request bodies, read freely by tests
  calls: Array<{ api: string; query: Record<string, string>; body: any; errcode: number; at: number }>;
  /** Token calls (classic + stable) that answered with an access_token. */
  tokenFetches(): number;
  /** Polls `predicate` every 10 ms; rejects after `timeoutMs` (default 5000) with a message naming the wait. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const ROUTES: Record<string, { api: MpApi; method: 'GET' | 'POST' }> = {
  '/cgi-bin/token': { api: 'token', method: 'GET' },
  '/cgi-bin/stable_token': { api: 'stable_token', method: 'POST' },
  '/cgi-bin/message/custom/send': { api: 'custom_send', method: 'POST' },
  '/cgi-bin/message/custom/typing': { api: 'typing', method: 'POST' },
  '/cgi-bin/media/upload': { api: 'media_upload', method: 'POST' },
  '/cgi-bin/media/get': { api: 'media_get', method: 'GET' },
};
const MAX_BODY = 1024 * 1024;

/** Starts the fake on 127.0.0.1 with a random port. */
export async function startFakeMpApi(opts: FakeMpApiOptions): Promise<FakeMpApi> {
  const tokens = new MpTokens(opts.appId, opts.appSecret, opts.tokenTtlS ?? 7200);
  const media = new MpMedia();
  const users = new MpUsers(media.store);
  const delays = new Map<MpApi, number>();
  const failures = new Map<MpApi, number[]>();
  const calls: FakeMpApi['calls'] = [];
  const typing: FakeMpApi['typing'] = [];
  const stableTokenRequests: FakeMpApi['stableTokenRequests'] = [];
  let fetches = 0;

  function answer(api: Exclude<MpApi, 'media_upload' | 'media_get'>, query: Record<string, string>, body: unknown, now: number): Answer {
    switch (api) {
      case 'token': {
        const bad = tokens.credentials(query.grant_type, query.appid, query.secret);
        return bad ?? tokens.classic(now);
      }
      case 'stable_token': {
        if (!isObj(body)) return err(47001, 'data format error');
        const bad = tokens.credentials(body.grant_type, body.appid, body.secret);
        return bad ?? tokens.stable(body.force_refresh === true, now);
      }
      case 'custom_send':
        return tokens.check(query.access_token, now) ?? users.send(body, now);
      case 'typing':
        return tokens.check(query.access_token, now) ?? users.typing(body, now);
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = Date.now();
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
    let body: unknown = raw === '' ? null : raw;
    try {
      if (raw !== '') body = JSON.parse(raw) as unknown; // WeChat ignores Content-Type and parses the body
    } catch {
      /* stays raw text: answered 47001 */
    }
    let parts: FormPart[] | null = null;
    if (api === 'media_upload') {
      parts = await parseMultipart(req.headers['content-type'], rawBytes);
      body = parts === null ? (rawBytes.length === 0 ? null : rawBytes.toString('utf8')) : { parts: describeParts(parts) };
    }
    const scripted = failures.get(api)?.shift();
    let final: Answer;
    if (scripted !== undefined) final = err(scripted, 'scripted failure');
    else if (req.method !== route.method) final = err(route.method === 'GET' ? 43001 : 43002, `require ${route.method} method`);
    else if (api === 'media_upload') final = tokens.check(query.access_token, at) ?? media.upload(query.type, parts, users.unauthorized, at);
    else if (api === 'media_get') {
      const got = tokens.check(query.access_token, at) ?? media.download(query.media_id, at);
      if (isMediaItem(got)) {
        calls.push({ api, query, body, errcode: 0, at });
        const delay = delays.get(api) ?? 0;
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (!res.destroyed) writeMedia(res, got, undefined, false);
        return;
      }
      final = got;
    } else final = answer(api, query, body, at);
    const errcode = typeof final.errcode === 'number' ? final.errcode : 0;
    if (typeof final.access_token === 'string') fetches += 1;
    calls.push({ api, query, body, errcode, at });
    if (api === 'typing') {
      const b = isObj(body) ? body : {};
      typing.push({ touser: b.touser, command: b.command, errcode, at });
    }
    if (api === 'stable_token') {
      stableTokenRequests.push({ force_refresh: isObj(body) && body.force_refresh === true, errcode, at });
    }
    const delay = delays.get(api) ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (res.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify(final));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      console.error('fake mp api: handler crashed', e);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    userInteracted: (openid, kind = 'message', atMs = Date.now()) => users.interacted(openid, kind, atMs),
    unfollow: (openid) => users.unfollow(openid),
    setUnauthorized: (on) => {
      users.unauthorized = on;
    },
    addMedia: (bytes, contentType, filename, type) => {
      const t = type ?? typeFromContentType(contentType);
      return media.store.put({ type: t === 'file' ? 'image' : t, filename, contentType, bytes }).media_id;
    },
    uploads: media.uploads,
    expireAccessTokens: () => tokens.expireAll(),
    failNext: (api, errcode, times = 1) => {
      failures.set(api, [...(failures.get(api) ?? []), ...Array<number>(times).fill(errcode)]);
    },
    setDelay: (api, ms) => void delays.set(api, ms),
    sent: users.sent,
    typing,
    stableTokenRequests,
    calls,
    tokenFetches: () => fetches,
    waitFor: async (predicate, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) {
          throw new Error(`fake mp api waitFor timed out after ${timeoutMs} ms: ${predicate.toString().slice(0, 200)}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
