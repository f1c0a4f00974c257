import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../http/http-error.js';
import { extractEncrypt, openEncrypted, requireParams, type CallbackSecrets } from '../../http/secure-callback.js';
import { XmlError, parseXml, xmlText } from '../../xml/parse.js';
import type { ReplayGuard } from '../../http/replay-guard.js';
import type { KfPuller } from './puller.js';
import { ALL_ACCOUNTS } from './sync.js';
import { storeCall } from '../../http/store-call.js';

/** The kf callback URL path to enter in the WeCom admin console (after the host). */
export const KF_CALLBACK_PATH = '/wecom/kf/callback';

export interface KfRouteDeps {
  secrets: CallbackSecrets;
  puller: KfPuller;
  /** remembers accepted callbacks: a replay with another body is refused, an identical one adds no pull */
  replay: ReplayGuard;
  /** CALLBACK_MAX_SKEW_S; 0 = off */
  maxSkewS: number;
}

/**
 * `GET /wecom/kf/callback` (URL verification: the decrypted echostr as text/plain) and `POST /wecom/kf/callback`
 * (an encrypted `kf_msg_or_event` notice: recorded durably, pulled in the background, answered `success` at
 * once). Checks run in docs/configuration.md's order; failures throw HttpError, which the app's error handler turns
 * into a plain-text 4xx/503 (docs/protocols.md kf §1.2, §2.1, §6).
 */
export function registerKfRoutes(app: FastifyInstance, d: KfRouteDeps): void {
  const config = { channel: 'kf' };

  app.get(KF_CALLBACK_PATH, { config }, async (request, reply) => {
    const q = requireParams(request.query as Record<string, string>, ['msg_signature', 'timestamp', 'nonce', 'echostr']);
    const plain = openEncrypted({
      secrets: d.secrets,
      signature: q.msg_signature,
      timestamp: q.timestamp,
      nonce: q.nonce,
      encrypt: q.echostr,
      maxSkewS: 0,
      nowS: Math.floor(Date.now() / 1000),
    });
    return reply.type('text/plain; charset=utf-8').send(plain);
  });

  app.post(KF_CALLBACK_PATH, { config }, async (request, reply) => {
    const q = requireParams(request.query as Record<string, string>, ['msg_signature', 'timestamp', 'nonce']);
    const encrypt = extractEncrypt(typeof request.body === 'string' ? request.body : '');
    const plain = openEncrypted({
      secrets: d.secrets,
      signature: q.msg_signature,
      timestamp: q.timestamp,
      nonce: q.nonce,
      encrypt,
      maxSkewS: d.maxSkewS,
      nowS: Math.floor(Date.now() / 1000),
    });
    let event;
    try {
      event = parseXml(plain);
    } catch (e) {
      if (e instanceof XmlError) throw new HttpError(400, 'bad_inner_xml', 'decrypted message is not valid XML');
      throw e;
    }
    const claim = await storeCall(request.log, 'record the callback', () =>
      d.replay.claim({ channel: 'kf', account: d.secrets.receiveid, timestamp: q.timestamp, nonce: q.nonce, signatures: [q.msg_signature], body: String(request.body ?? '') }),
    );
    request.replayClaim = claim;
    if (claim.kind === 'retry') {
      // The same notice again (WeCom's retry, or a replay): its pull is done or under way; another round would
      // only spend sync_msg quota.
      request.callbackOutcome = 'retry';
      return reply.type('text/plain; charset=utf-8').send('success');
    }
    if (xmlText(event, 'MsgType') !== 'event' || xmlText(event, 'Event') !== 'kf_msg_or_event') {
      request.log.info({ channel: 'kf', event: xmlText(event, 'Event') }, 'callback is not a kf message notice; ignored');
      request.callbackOutcome = 'ignored';
      return reply.type('text/plain; charset=utf-8').send('success');
    }
    const account = xmlText(event, 'OpenKfId') || ALL_ACCOUNTS;
    await storeCall(request.log, 'record the callback', () => d.puller.request(account, xmlText(event, 'Token') || null));
    return reply.type('text/plain; charset=utf-8').send('success');
  });
}
