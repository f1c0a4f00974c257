import { inboundSummary } from '../../pipeline/inbound-summary.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';
import { setMaxListeners } from 'node:events';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { ReplayGuard } from '../../http/replay-guard.js';
import type { JobQueue } from '../../pipeline/job-queue.js';
import type { MpMessageJob } from '../../pipeline/jobs.js';
import { jobId } from '../../pipeline/jobs.js';
import type { Store } from '../../store/types.js';
import type { AccountMode } from './account-mode.js';
import { answerAuto, answerPassive, type DeliveryAnswer, type DeliveryDeps } from './deliver.js';
import { firstDelivery } from './slots.js';
import { handleMpEvent, type MpEventDeps } from './events.js';
import { KNOWN_MSGTYPES, messageInput, readPush, type MpMessage } from './inbound.js';
import { buildTextReply, sealReply } from './reply-xml.js';
import { openMpPush, verifyMpServer, type MpSecrets } from './verify.js';
import { storeCall } from '../../http/store-call.js';

/** The OA server URL path to enter in the Official Account admin console (after the host). */
export const MP_CALLBACK_PATH = '/wechat/mp/callback';

export interface MpRouteDeps {
  secrets: MpSecrets;
  /** remembers accepted pushes: a seen URL with another body is refused, an identical request attaches */
  replay: ReplayGuard;
  /** the message log's rows: a `pending` row per new customer message (default: none) */
  recorder?: MessageRecorder;
  /** CALLBACK_MAX_SKEW_S; 0 = off */
  maxSkewS: number;
  store: Store;
  /** where a message is handed off (durable once it resolves) */
  jobs: Pick<JobQueue, 'handOff'>;
  mode: AccountMode;
  delivery: DeliveryDeps;
  events: Omit<MpEventDeps, 'log'>;
  log: Logger;
}

/**
 * `GET /wechat/mp/callback` (server check: the bare echostr) and `POST /wechat/mp/callback` (a push in plaintext,
 * compatible or safe mode, detected per request; docs/protocols.md OA §3). Events are answered at once. A
 * customer message is handed off durably as a job (the MsgId is the dedup: retries attach to the same job),
 * then answered by reply mode: `active` → `success` now; `passive` → held for the passive reply
 * (deliver.ts); `auto` → a short hold, then passive or `success`. Failures throw HttpError (plain-text 4xx/503).
 */
export function registerMpRoutes(app: FastifyInstance, d: MpRouteDeps): void {
  const config = { channel: 'mp' };
  const closing = new AbortController();
  // One listener per held delivery: hundreds may wait at once in passive mode.
  setMaxListeners(0, closing.signal);
  app.addHook('preClose', async () => closing.abort());

  app.get(MP_CALLBACK_PATH, { config }, async (request, reply) => {
    const echostr = verifyMpServer(d.secrets.token, request.query as Record<string, string>);
    return reply.type('text/plain; charset=utf-8').send(echostr);
  });

  app.post(MP_CALLBACK_PATH, { config }, async (request, reply) => {
    const nowS = () => Math.floor(Date.now() / 1000);
    const opened = openMpPush({
      secrets: d.secrets,
      query: request.query as Record<string, string>,
      body: typeof request.body === 'string' ? request.body : '',
      maxSkewS: d.maxSkewS,
      nowS: nowS(),
    });
    const push = readPush(opened.message);
    const log = d.log.child({ channel: 'mp', openid: push.openid });
    const query = request.query as Record<string, string>;
    const claim = await storeCall(log, 'handle the push', () =>
      d.replay.claim({
        channel: 'mp',
        account: d.secrets.appId,
        timestamp: query.timestamp ?? '',
        nonce: opened.nonce,
        signatures: [query.signature ?? '', query.msg_signature ?? ''],
        body: typeof request.body === 'string' ? request.body : '',
      }),
    );
    request.replayClaim = claim;
    if (claim.kind === 'retry') request.callbackOutcome = 'retry';
    const respond = (text: string | null) => {
      if (text === null) return reply.type('text/plain; charset=utf-8').send('success');
      const xml = buildTextReply({ openid: push.openid, ghId: push.ghId, content: text, nowS: nowS() });
      const body = sealReply(xml, { encrypted: opened.encrypted, secrets: d.secrets, nonce: opened.nonce, nowS: nowS() });
      return reply.type('application/xml; charset=utf-8').send(body);
    };
    if (push.kind === 'event') {
      request.callbackOutcome = 'event';
      return respond(await storeCall(log, 'handle the push', () => handleMpEvent({ ...d.events, log }, push)));
    }
    const { id, delivery, firstAtMs } = await storeCall(log, 'handle the push', () => handOff(d, push, log));
    if (delivery === 'active') return respond(null);
    // An identical request (a replay, or WeChat's retry of a delivery we are still holding) attaches without counting
    // as another delivery: a replay must not bring the third delivery's "still thinking" forward.
    const job = { id, delivery, firstAtMs, counted: claim.kind === 'new' };
    const answer = await storeCall(log, 'handle the push', () => holdForAnswer(d, job, reply, closing.signal));
    if (answer.kind === 'held') {
      request.callbackOutcome = 'held';
      return reply.code(503).type('text/plain; charset=utf-8').send('answer not ready');
    }
    return respond(answer.kind === 'reply' ? answer.text : null);
  });
}

/**
 * Records the message as a job (once per MsgId). Every delivery of a MsgId uses the reply mode
 * and first-arrival time recorded by the first one, so an account switching mode meanwhile cannot split them.
 */
async function handOff(
  d: MpRouteDeps,
  m: MpMessage,
  log: Logger,
): Promise<{ id: string; delivery: MpMessageJob['delivery']; firstAtMs: number }> {
  const id = jobId('mp', d.secrets.appId, m.openid, m.msgid);
  const first = await firstDelivery(d.store, id, Date.now(), await d.mode.current());
  const delivery = first.mode;
  const input = messageInput(m);
  if (!KNOWN_MSGTYPES.has(m.msgtype)) log.warn({ msgtype: m.msgtype.slice(0, 32) }, 'unknown OA message type');
  const payload: MpMessageJob = {
    channel: 'mp',
    type: 'mp.message',
    appid: d.secrets.appId,
    openid: m.openid,
    msgid: m.msgid,
    msgtype: m.msgtype,
    create_time: m.createTime,
    content: input.content,
    described: input.described,
    ...(input.media_id ? { media_id: input.media_id } : {}),
    ...(input.link_url ? { link_url: input.link_url } : {}),
    delivery,
    received_at_ms: first.atMs,
  };
  const [created] = await d.jobs.handOff([{ id, payload: JSON.stringify(payload) }]);
  if (!created) d.events.metrics.dedupHits.inc({ channel: 'mp' });
  const summary = created ? inboundSummary(payload) : null;
  if (summary) d.recorder?.inbound({ channel: 'mp', account: payload.appid, externalId: payload.openid, msgid: payload.msgid, ...summary, atMs: first.atMs });
  return { id, delivery, firstAtMs: first.atMs };
}

/** Waits for the answer of a passive/auto delivery; stops early when WeChat closes the connection or we shut down. */
async function holdForAnswer(
  d: MpRouteDeps,
  job: { id: string; delivery: 'passive' | 'auto'; firstAtMs: number; counted: boolean },
  reply: FastifyReply,
  closing: AbortSignal,
): Promise<DeliveryAnswer> {
  const gone = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) gone.abort();
  };
  reply.raw.on('close', onClose);
  const stop = () => gone.abort();
  if (closing.aborted) stop();
  closing.addEventListener('abort', stop, { once: true });
  try {
    return job.delivery === 'passive'
      ? await answerPassive(d.delivery, job.id, { firstAtMs: job.firstAtMs, counted: job.counted }, gone.signal)
      : await answerAuto(d.delivery, job.id, gone.signal);
  } finally {
    reply.raw.off('close', onClose);
    closing.removeEventListener('abort', stop);
  }
}
