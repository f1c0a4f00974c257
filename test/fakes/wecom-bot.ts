/**
 * A protocol-faithful fake of WeCom's side of the smart-bot (智能机器人) callback protocol (wecom-aibot-protocol.md
 * §1–8, §10): it verifies the URL, posts encrypted callbacks to our server over real HTTP (Node's fetch, no
 * retries), opens every reply strictly (wecom-bot-reply.ts) and polls unfinished streams like WeCom. Crypto comes
 * from the independent reference implementation, never from `src/`. An optional loopback server plays WeCom's
 * media storage and `response_url` (wecom-bot-media.ts).
 *
 * Units: query `timestamp` is unix SECONDS (decimal string); every `…Ms` / `atMs` / `ms` is milliseconds measured
 * with performance.now(); `atMs` counts from the moment the user's message was posted.
 */
import { randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { completeMessage, refreshOf, type BotDraft, type BotMessage } from './wecom-bot-messages.js';
import { startWecomBotMediaServer, type WecomBotMediaServer } from './wecom-bot-media.js';
import { BotReplyError, checkStreamFrame, openBotReply, type BotReply, type StreamFrame, type StreamImage } from './wecom-bot-reply.js';
import { botEncrypt, botSignature, newEncodingAesKey } from './wecom-bot-reference-crypto.js';

export { BotReplyError } from './wecom-bot-reply.js';
export type { BotReply, StreamFrame, StreamImage } from './wecom-bot-reply.js';
export type { BotDraft, BotMessage } from './wecom-bot-messages.js';

/** The robot as configured in the admin console, and where our server listens. */
export interface FakeWecomBotOptions {
  /** Our server, e.g. `http://127.0.0.1:PORT` (no trailing slash). */
  baseUrl: string;
  /** The BotID / `aibotid`; the callback path is `/wecom/bot/callback/<botId>`. */
  botId: string;
  token: string;
  /** 43 characters. */
  encodingAesKey: string;
  /** Pause between a refresh answer and the next refresh, ms; default 1000 (WeCom's, unconfirmed). */
  refreshIntervalMs?: number;
  /** WeCom stops polling this long after the user's message, ms; default 360000 (6 min). */
  streamLifetimeMs?: number;
  /** `from.userid` of drafts that name none; default `zhangsan`. */
  userid?: string;
  /** Abort any single HTTP request after this many ms; default 10000. */
  requestTimeoutMs?: number;
}

/** The signed query of a POST callback. `timestamp` is unix seconds. */
export type CallbackQuery = {
  msg_signature: string;
  timestamp: string;
  nonce: string;
};

/** What `send` saw. */
export interface SendResult {
  status: number;
  /** Raw response text. */
  body: string;
  /** The decrypted, checked reply for HTTP 200 with a non-empty body; null for an empty body or another status. */
  reply: BotReply | null;
  /** The callback as encrypted and posted (resend it for a duplicate delivery: same msgid). */
  message: BotMessage;
  query: CallbackQuery;
  /** Request duration, ms. */
  ms: number;
}

/** One stream frame as the user would see it. `atMs`: ms after the user's message was posted. */
export interface StreamSnapshot {
  atMs: number;
  /** `stream.content`, '' when absent. */
  content: string;
  finish: boolean;
  msg_item?: StreamImage[];
}

/** A refresh that got no usable answer (only recorded with `tolerateFailedPolls`). */
export interface FailedPoll {
  atMs: number;
  /** HTTP status, or null for a network error / timeout. */
  status: number | null;
  error: string;
}

/** The outcome of `conversation`. */
export interface ConversationResult {
  streamId: string;
  /** Every frame in order: the first reply's, then one per answered refresh. */
  snapshots: StreamSnapshot[];
  /** The last frame's `stream`. */
  final: StreamFrame;
  /** True when WeCom's window (`streamLifetimeMs`) closed before a `finish: true`. */
  expired: boolean;
  /** The whole decrypted first reply (e.g. to read `stream.feedback`). */
  firstFrame: BotReply;
  /** The user's callback as posted. */
  message: BotMessage;
  /** Refresh callbacks posted (the after-finish probe not counted). */
  polls: number;
  failedPolls: FailedPoll[];
}

/** Options of `conversation`. */
export interface ConversationOptions {
  /** Awaited after every frame (index 0 = first reply), before the next refresh. */
  onSnapshot?: (s: StreamSnapshot, index: number) => void | Promise<void>;
  /**
   * Keep polling after a refresh gets a non-200 status, an empty body or a network error, as WeCom would, and record
   * it in `failedPolls`. Default false: throw. Protocol violations (bad envelope, other stream id) always throw.
   */
  tolerateFailedPolls?: boolean;
  /** After `finish: true`, post one more refresh whose frame must equal the final one; default true. */
  probeAfterFinish?: boolean;
}

/** A raw request for hostile-input tests; everything defaults to a POST to the callback path with JSON type. */
export interface RawRequest {
  /** Query pairs (values URL-encoded here) or a ready query string without `?`. */
  query?: Record<string, string> | string;
  body?: string | Buffer;
  /** Merged over `content-type: application/json`. */
  headers?: Record<string, string>;
  method?: string;
  /** Default `/wecom/bot/callback/<botId>`. */
  path?: string;
}

/** The fake; see {@link createFakeWecomBot}. */
export interface FakeWecomBot {
  readonly botId: string;
  /** `baseUrl` + `/wecom/bot/callback/<botId>`. */
  readonly callbackUrl: string;
  /** The media / response_url server once started (message callbacks then get response_urls on it). */
  readonly media: WecomBotMediaServer | undefined;
  /**
   * The verification GET (§2): `msg_signature, timestamp, nonce, echostr` with echostr = encrypt(`echoPlain`,
   * default 19 random digits), each value encodeURIComponent-ed. `expected` is what a correct server returns as the
   * whole body (within 1 s: compare `ms`).
   */
  verifyUrl(o?: { echoPlain?: string; timestamp?: string; nonce?: string }): Promise<{ status: number; body: string; expected: string; ms: number }>;
  /** Fills a draft's defaults (see wecom-bot-messages.ts) without sending. */
  complete(draft: BotDraft): BotMessage;
  /**
   * Posts one callback: completes the draft, encrypts it (receive id ""), `POST {"encrypt": …}` with
   * `msg_signature, timestamp, nonce` and `content-type: application/json`. For HTTP 200 with a body, checks the
   * envelope and decrypts it (throws {@link BotReplyError} if wrong). `o.timestamp` (unix s) / `o.nonce` override
   * the fresh ones. Network errors and timeouts reject.
   */
  send(draft: BotDraft, o?: { timestamp?: string; nonce?: string }): Promise<SendResult>;
  /**
   * The user's message and the stream that follows, like WeCom: posts `draft`, requires a stream frame, then while
   * the last frame is unfinished posts a refresh `{msgid (new), aibotid, chatid?, chattype, from, msgtype: stream,
   * stream: {id}}` `refreshIntervalMs` after each answer, until `finish: true` or `streamLifetimeMs` after the
   * message. Throws on a refresh frame with another stream id, a frame after finish that differs from the final
   * one, any malformed frame, or (unless tolerated) a failed refresh.
   */
  conversation(draft: BotDraft, o?: ConversationOptions): Promise<ConversationResult>;
  /**
   * A signed callback without sending it: encrypts `inner` (JSON.stringify-ed unless a string) with `receiveid`
   * (default ""), and signs it unless `msg_signature` is given. For {@link FakeWecomBot.sendRaw}.
   */
  seal(
    inner: object | string,
    o?: { receiveid?: string; timestamp?: string; nonce?: string; msg_signature?: string },
  ): { query: CallbackQuery; body: string; encrypt: string };
  /** One raw HTTP request, no checks on the answer. */
  sendRaw(r: RawRequest): Promise<{ status: number; headers: Headers; body: string; ms: number }>;
  /** Starts (once) the media / response_url server on 127.0.0.1:0. */
  startMediaServer(): Promise<WecomBotMediaServer>;
  /** Closes the media server if started. */
  close(): Promise<void>;
}

/** WeCom's nonces: decimal digits (9–10). */
const newNonce = (): string => String(randomInt(100_000_000, 2_147_483_647));
const nowS = (): string => String(Math.floor(Date.now() / 1000));
const qs = (q: Record<string, string>): string =>
  Object.entries(q).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const snapshotOf = (s: StreamFrame, atMs: number): StreamSnapshot => ({
  atMs,
  content: s.content ?? '',
  finish: s.finish === true,
  ...(s.msg_item !== undefined && { msg_item: s.msg_item }),
});

/** Creates the fake (no server of its own until `startMediaServer`). Throws on a bad EncodingAESKey. */
export function createFakeWecomBot(opts: FakeWecomBotOptions): FakeWecomBot {
  const { baseUrl, botId, token, encodingAesKey } = opts;
  botEncrypt(encodingAesKey, ''); // validates the key now
  const interval = opts.refreshIntervalMs ?? 1000;
  const lifetime = opts.streamLifetimeMs ?? 360_000;
  const timeoutMs = opts.requestTimeoutMs ?? 10_000;
  const path = `/wecom/bot/callback/${encodeURIComponent(botId)}`;
  let media: WecomBotMediaServer | undefined;
  let mediaStarting: Promise<WecomBotMediaServer> | undefined;

  // Without a media server, response_urls point at the loopback discard port: any POST fails fast, offline.
  const responseUrl = (): string => media?.newResponseUrl() ?? `http://127.0.0.1:9/response/${newNonce()}`;
  const complete = (d: BotDraft): BotMessage =>
    completeMessage(d, { aibotid: botId, userid: opts.userid ?? 'zhangsan', responseUrl });

  async function http(r: RawRequest): Promise<{ status: number; headers: Headers; body: string; ms: number }> {
    const query = typeof r.query === 'string' ? r.query : qs(r.query ?? {});
    const url = `${baseUrl}${r.path ?? path}${query === '' ? '' : `?${query}`}`;
    const method = r.method ?? 'POST';
    const t0 = performance.now();
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { 'content-type': 'application/json', ...r.headers },
        ...(r.body !== undefined && method !== 'GET' && method !== 'HEAD' && { body: r.body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const cause = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
      throw new Error(`fake wecom-bot: ${method} ${url} failed: ${cause}`, { cause: e });
    }
    const body = await res.text();
    return { status: res.status, headers: res.headers, body, ms: performance.now() - t0 };
  }

  function seal(
    inner: object | string,
    o: { receiveid?: string; timestamp?: string; nonce?: string; msg_signature?: string } = {},
  ): { query: CallbackQuery; body: string; encrypt: string } {
    const plaintext = typeof inner === 'string' ? inner : JSON.stringify(inner);
    const encrypt = botEncrypt(encodingAesKey, plaintext, o.receiveid ?? '');
    const timestamp = o.timestamp ?? nowS();
    const nonce = o.nonce ?? newNonce();
    const msg_signature = o.msg_signature ?? botSignature(token, timestamp, nonce, encrypt);
    return { query: { msg_signature, timestamp, nonce }, body: JSON.stringify({ encrypt }), encrypt };
  }

  async function send(draft: BotDraft, o: { timestamp?: string; nonce?: string } = {}): Promise<SendResult> {
    const message = complete(draft);
    const sealed = seal(message, o);
    const r = await http({ query: sealed.query, body: sealed.body });
    const reply = r.status === 200 && r.body !== '' ? openBotReply(r.body, { token, encodingAesKey, nonce: sealed.query.nonce }) : null;
    return { status: r.status, body: r.body, reply, message, query: sealed.query, ms: r.ms };
  }

  /** One refresh: the checked frame, or why it failed (thrown unless tolerated by the caller). */
  async function poll(message: BotMessage, streamId: string): Promise<StreamFrame | { status: number | null; error: string }> {
    let r: SendResult;
    try {
      r = await send(refreshOf(message, streamId));
    } catch (e) {
      if (e instanceof BotReplyError) throw e;
      return { status: null, error: (e as Error).message };
    }
    if (r.status !== 200) return { status: r.status, error: `refresh answered HTTP ${r.status}: ${r.body.slice(0, 200)}` };
    if (r.reply === null) return { status: 200, error: 'refresh answered an empty body' };
    const frame = checkStreamFrame(r.reply);
    if (frame.id !== streamId) throw new BotReplyError(`smart-bot reply: refresh for stream ${streamId} answered stream ${frame.id}`);
    return frame;
  }

  async function conversation(draft: BotDraft, o: ConversationOptions = {}): Promise<ConversationResult> {
    const t0 = performance.now();
    const at = (): number => performance.now() - t0;
    const first = await send(draft);
    if (first.reply === null) {
      throw new BotReplyError(`smart-bot reply: the message got HTTP ${first.status} with ${first.body === '' ? 'an empty body' : first.body.slice(0, 200)}, not a stream frame`);
    }
    let last = checkStreamFrame(first.reply);
    const streamId = last.id;
    const snapshots = [snapshotOf(last, at())];
    await o.onSnapshot?.(snapshots[0]!, 0);
    const failedPolls: FailedPoll[] = [];
    let polls = 0;
    while (last.finish !== true) {
      if (at() >= lifetime) break;
      await sleep(Math.min(interval, lifetime - at()));
      if (at() >= lifetime) break;
      polls += 1;
      const got = await poll(first.message, streamId);
      if ('error' in got) {
        if (o.tolerateFailedPolls !== true) throw new Error(`fake wecom-bot: ${got.error}`);
        failedPolls.push({ atMs: at(), ...got });
        continue;
      }
      last = got;
      snapshots.push(snapshotOf(last, at()));
      await o.onSnapshot?.(snapshots.at(-1)!, snapshots.length - 1);
    }
    const expired = last.finish !== true;
    if (!expired && o.probeAfterFinish !== false) {
      const again = await poll(first.message, streamId);
      if ('error' in again) throw new Error(`fake wecom-bot: after finish, ${again.error}`);
      if (!isDeepStrictEqual(again, last)) {
        throw new BotReplyError(`smart-bot reply: a frame after finish differs: ${JSON.stringify(again).slice(0, 300)} vs final ${JSON.stringify(last).slice(0, 300)}`);
      }
    }
    return { streamId, snapshots, final: last, expired, firstFrame: first.reply, message: first.message, polls, failedPolls };
  }

  return {
    botId,
    callbackUrl: `${baseUrl}${path}`,
    get media() {
      return media;
    },
    async verifyUrl(o = {}) {
      const expected = o.echoPlain ?? String(randomInt(1, 10)) + Array.from({ length: 18 }, () => String(randomInt(0, 10))).join('');
      const sealed = seal(expected, { timestamp: o.timestamp, nonce: o.nonce });
      const query = { ...sealed.query, echostr: sealed.encrypt };
      const r = await http({ method: 'GET', query });
      return { status: r.status, body: r.body, expected, ms: r.ms };
    },
    complete,
    send,
    conversation,
    seal,
    sendRaw: http,
    startMediaServer() {
      mediaStarting ??= startWecomBotMediaServer(encodingAesKey).then((m) => (media = m));
      return mediaStarting;
    },
    async close() {
      await (await mediaStarting?.catch(() => undefined))?.close();
    },
  };
}

/** {@link createFakeWecomBot} with the media / response_url server already started. */
export async function startFakeWecomBot(opts: FakeWecomBotOptions): Promise<FakeWecomBot> {
  const bot = createFakeWecomBot(opts);
  await bot.startMediaServer();
  return bot;
}

/** Fresh console settings for a test bot: BotID, Token (32 chars), EncodingAESKey (43). */
export function newBotCredentials(): { botId: string; token: string; encodingAesKey: string } {
  const alnum = (n: number): string => newEncodingAesKey().slice(0, n);
  return { botId: `aib${alnum(29)}`, token: alnum(32), encodingAesKey: newEncodingAesKey() };
}
