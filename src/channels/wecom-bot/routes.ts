import type { FastifyInstance, FastifyReply, RouteShorthandOptions } from 'fastify';
import { computeSignature, encrypt, buildEncryptedJsonReply } from '../../crypto/wxbizmsgcrypt.js';
import { CryptoError } from '../../errors.js';
import { HttpError } from '../../http/http-error.js';
import type { ReplayGuard } from '../../http/replay-guard.js';
import { extractEncrypt, openEncrypted, requireParams, type CallbackSecrets } from '../../http/secure-callback.js';
import type { Metrics } from '../../metrics.js';
import { inboundSummary } from '../../pipeline/inbound-summary.js';
import type { JobQueue } from '../../pipeline/job-queue.js';
import { jobId } from '../../pipeline/jobs.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';
import { botUserKey, readBotInbound, toBotJob, type BotInbound } from './inbound.js';
import type { BotStreams, StreamSnapshot } from './streams.js';
import { storeCall } from '../../http/store-call.js';

/** The callback URL to enter in the bot's API settings (after the host), `<botId>` being its BotID. */
export const BOT_CALLBACK_PATH = '/wecom/bot/callback/:botId';

/** What the first frame of a new answer shows until the agent's first text. */
export const BOT_PLACEHOLDER = '正在思考中…';
/** A refresh for a stream this bridge does not know (expired, or never ours) is ended with this. */
export const BOT_UNKNOWN_STREAM = '该回答已结束或已过期。';

export interface BotRouteDeps {
  /** callback-mode bots by BotID (long-connection bots are absent: their route answers 404) */
  bots: ReadonlyMap<string, CallbackSecrets>;
  jobs: Pick<JobQueue, 'handOff'>;
  streams: BotStreams;
  replay: ReplayGuard;
  /** CALLBACK_MAX_SKEW_S; 0 = off */
  maxSkewS: number;
  /** `enter_chat`'s text: the bot's `welcome`, else the routed agent's, else WELCOME_MESSAGE; null: none */
  welcomeOf(botId: string): string | null;
  metrics: Metrics;
  recorder?: MessageRecorder;
}

/**
 * `GET|POST /wecom/bot/callback/:botId` (wecom-aibot-protocol.md §2–§8, interface.md "Smart bot"). An unknown bot
 * (or one in long-connection mode) is 404 before anything else, the body included; then the kf route's checks and
 * statuses with receiveid `""`. A new message is handed off (deduplicated by msgid) and answered at once with the
 * stream's first frame; a refresh gets the newest snapshot from the store, never waiting for the agent.
 */
export function registerBotRoutes(app: FastifyInstance, d: BotRouteDeps): void {
  const secretsOf = (params: unknown) => d.bots.get((params as { botId?: string }).botId ?? '');
  // onRequest runs before the body is read: an unknown id costs nothing and is never a 413.
  const knownBot = async (request: { params: unknown }, reply: FastifyReply) => {
    if (!secretsOf(request.params)) await reply.code(404).type('text/plain; charset=utf-8').send('not found');
  };

  const opts: RouteShorthandOptions = { config: { channel: 'bot' } as RouteShorthandOptions['config'], onRequest: knownBot };
  app.get(BOT_CALLBACK_PATH, opts, async (request, reply) => {
    const secrets = secretsOf(request.params) as CallbackSecrets;
    const q = requireParams(request.query as Record<string, string>, ['msg_signature', 'timestamp', 'nonce', 'echostr']);
    const plain = openEncrypted({ secrets, signature: q.msg_signature, timestamp: q.timestamp, nonce: q.nonce, encrypt: q.echostr, maxSkewS: 0, nowS: nowS() });
    return reply.type('text/plain; charset=utf-8').send(plain);
  });

  app.post(BOT_CALLBACK_PATH, opts, async (request, reply) => {
    const botId = (request.params as { botId: string }).botId;
    const secrets = secretsOf(request.params) as CallbackSecrets;
    const q = requireParams(request.query as Record<string, string>, ['msg_signature', 'timestamp', 'nonce']);
    const body = typeof request.body === 'string' ? request.body : '';
    const plain = openEncrypted({ secrets, signature: q.msg_signature, timestamp: q.timestamp, nonce: q.nonce, encrypt: extractEncrypt(body), maxSkewS: d.maxSkewS, nowS: nowS() });
    let inbound: BotInbound;
    try {
      inbound = readBotInbound(JSON.parse(plain));
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError(400, 'bad_inner_json', 'decrypted message is not valid JSON');
    }
    const log = request.log;
    // An identical request is WeCom's retry: answering it again is harmless (everything below is idempotent), so
    // only a forgery (same signature, another body) is refused here.
    const claim = () => d.replay.claim({ channel: 'bot', account: botId, timestamp: q.timestamp, nonce: q.nonce, signatures: [q.msg_signature], body });
    const respond = (message: unknown) => sendEncrypted(reply, secrets, q.nonce, message);

    if (inbound.kind === 'refresh') {
      // The hottest path (WeCom polls every stream about once a second): the claim and the read in one round trip
      // time; the read is simply dropped when the claim refuses.
      const [replayClaim, snapshot] = await storeCall(log, 'handle the smart-bot callback', () => Promise.all([claim(), d.streams.get(inbound.streamId)]));
      request.replayClaim = replayClaim;
      request.callbackOutcome = 'refresh';
      if (!snapshot || snapshot.botId !== botId) return respond(streamFrame(inbound.streamId, { content: BOT_UNKNOWN_STREAM, finish: true }));
      return respond(streamFrame(inbound.streamId, snapshot));
    }
    request.replayClaim = await storeCall(log, 'handle the smart-bot callback', claim);
    if (inbound.kind === 'event') {
      request.callbackOutcome = 'event';
      if (inbound.eventtype !== 'enter_chat') return reply.code(200).send('');
      const welcome = d.welcomeOf(botId);
      if (!welcome) return reply.code(200).send('');
      d.metrics.replies.inc({ channel: 'bot', kind: 'welcome' });
      d.recorder?.outbound({ channel: 'bot', account: botId, externalId: botUserKey(inbound.userid, inbound.chatid), partId: `w-${inbound.msgid || q.nonce}`, kind: 'welcome', content: welcome, status: 'sent' });
      return respond({ msgtype: 'text', text: { content: welcome } });
    }
    const receivedAtMs = Date.now();
    const job = toBotJob(inbound, { botId, mode: 'callback', receivedAtMs });
    const first: StreamSnapshot = { botId, content: BOT_PLACEHOLDER, finish: false, createdAtMs: receivedAtMs, seq: 1 };
    // The snapshot before the hand-off: a refresh (or a replica) must never find the stream missing while its job
    // exists. A retry of the message finds both and shows what is there now.
    const snapshot = await storeCall(log, 'handle the smart-bot callback', async () => {
      const isNew = await d.streams.begin(job.streamId, first);
      const [created] = await d.jobs.handOff([{ id: jobId('bot', botId, botUserKey(job.userid, job.chatid), job.msgid), payload: JSON.stringify(job) }]);
      if (!created) {
        d.metrics.dedupHits.inc({ channel: 'bot' });
        request.callbackOutcome = 'duplicate';
        return (await d.streams.get(job.streamId)) ?? first;
      }
      const summary = inboundSummary(job);
      if (summary) d.recorder?.inbound({ channel: 'bot', account: botId, externalId: botUserKey(job.userid, job.chatid), msgid: job.msgid, ...summary, atMs: receivedAtMs });
      return isNew ? first : ((await d.streams.get(job.streamId)) ?? first);
    });
    return respond(streamFrame(job.streamId, snapshot));
  });
}

/** The plaintext `stream` reply (wecom-aibot-protocol.md §4); images only on the finished frame. */
export function streamFrame(id: string, s: Pick<StreamSnapshot, 'content' | 'finish' | 'msg_item'>): Record<string, unknown> {
  return { msgtype: 'stream', stream: { id, finish: s.finish, content: s.content, ...(s.finish && s.msg_item?.length ? { msg_item: s.msg_item } : {}) } };
}

function sendEncrypted(reply: FastifyReply, secrets: CallbackSecrets, nonce: string, message: unknown): FastifyReply {
  const timestamp = String(nowS());
  const ciphertext = encrypt(secrets.aesKey, JSON.stringify(message), secrets.receiveid);
  try {
    const body = buildEncryptedJsonReply({ encrypt: ciphertext, signature: computeSignature(secrets.token, timestamp, nonce, ciphertext), timestamp, nonce }, { numericTimestamp: true });
    return reply.type('application/json; charset=utf-8').send(body);
  } catch (e) {
    // The reply must carry the callback's nonce; one outside [A-Za-z0-9] cannot be embedded (WeCom's never is).
    if (e instanceof CryptoError) throw new HttpError(400, 'bad_nonce', 'nonce must be letters and digits');
    throw e;
  }
}

function nowS(): number {
  return Math.floor(Date.now() / 1000);
}
