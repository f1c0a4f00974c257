import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { sendCustomText } from '../channels/wechat-mp/send.js';
import { sendKfText } from '../channels/wecom-kf/send.js';
import { HUMAN_STATES, readServiceState, recordServiceState, transferToHuman } from '../channels/wecom-kf/service-state.js';
import { WechatApiError } from '../errors.js';
import type { CustomerRecord } from '../identity/types.js';
import type { MessageLog } from '../log/types.js';
import { setOperatorHold } from '../pipeline/operator-hold.js';
import type { MessageRecorder } from '../pipeline/recorder.js';
import { customerKey } from '../store/keys.js';
import type { Store } from '../store/types.js';
import type { ApiClient } from '../wechat-api/api-client.js';
import type { EventBus } from './event-bus.js';

/** The outcome of an operator action: done (with the conversation's new state), or why not (HTTP status + error). */
export type ActionResult = { ok: true; state: 'bot' | 'human' } | { ok: false; status: 409 | 502; error: string };

/** The operator's actions on a customer's conversation (interface.md "Operator API": reply, handoff, resume). */
export interface OperatorActions {
  /** Sends `text` as the operator through the customer's channel (kf send_msg, OA custom/send); the bot goes quiet. */
  reply(c: CustomerRecord, text: string): Promise<ActionResult>;
  /** kf: `service_state/trans` to HANDOFF_SERVICE_STATE; the bot goes quiet. */
  handOff(c: CustomerRecord): Promise<ActionResult>;
  /** The bot answers again; kf: a conversation WeCom holds (2/3) is ended (`service_state/trans` to 4). */
  resume(c: CustomerRecord): Promise<ActionResult>;
}

/** Where a customer last talked to the bridge on a channel that can carry an operator's message. */
interface Place {
  channel: 'kf' | 'mp';
  account: string;
  externalId: string;
}

/**
 * The operator's actions over the kf/OA APIs (docs/protocols.md kf §3 send_msg, §4.2 service_state/trans; OA
 * custom/send) and the store's operator hold (pipeline/operator-hold.ts). Each publishes the new state on the bus.
 * Never throws for a refusal: it is an ActionResult (409 the channel cannot, 502 the platform refused); a store that
 * does not answer throws (the route answers 500).
 */
export function createOperatorActions(d: {
  store: Store;
  log: MessageLog;
  logger: Logger;
  recorder: MessageRecorder;
  bus: EventBus;
  kfApi: ApiClient | null;
  mpApi: ApiClient | null;
  /** HANDOFF_SERVICE_STATE / HANDOFF_SERVICER_USERID */
  handoff: { serviceState: 2 | 3; servicerUserid: string | null };
}): OperatorActions {
  const signal = () => AbortSignal.timeout(15_000);
  /** The newest kf or OA conversation of the customer, from their log rows (kf: the open_kfid they wrote to). */
  const placeOf = async (c: CustomerRecord): Promise<Place | null> => {
    const page = await d.log.query({ customerId: c.customerId, limit: 50, cursor: null });
    const row = page.items.find((r) => r.channel === 'kf' || r.channel === 'mp');
    if (row) return { channel: row.channel as 'kf' | 'mp', account: row.account, externalId: row.externalId };
    // No rows (erased log, or a log without MySQL after a restart): an OA identity is enough; a kf one lacks its open_kfid.
    const mp = c.identities.find((i) => i.channel === 'mp');
    return mp ? { channel: 'mp', account: mp.account, externalId: mp.externalId } : null;
  };
  const stateChanged = (c: CustomerRecord, state: 'bot' | 'human') => d.bus.publish({ type: 'state', data: { customerId: c.customerId, state } });
  const refused = (e: unknown): ActionResult => ({
    ok: false,
    status: 502,
    error: e instanceof WechatApiError ? `WeCom/WeChat refused it: errcode ${e.errcode ?? e.status ?? 'network'} (${e.message})` : e instanceof Error ? e.message : String(e),
  });
  const noChannel = (what: string): ActionResult => ({ ok: false, status: 409, error: `customer: ${what}` });

  return {
    reply: async (c, text) => {
      const place = await placeOf(c);
      if (!place) return noChannel('has no kf or Official Account conversation an operator can reply in');
      const key = customerKey(place.channel, place.account, place.externalId);
      const msgid = `op_${randomBytes(12).toString('base64url')}`;
      try {
        if (place.channel === 'kf') {
          if (!d.kfApi) return noChannel('the kf channel is not configured');
          await sendKfText(d.kfApi, { open_kfid: place.account, touser: place.externalId, msgid, content: text }, { signal: signal(), mayHaveBeenSent: false, retries: 1 });
        } else {
          if (!d.mpApi) return noChannel('this Official Account answers passively only: it cannot send a message of its own');
          await sendCustomText(d.mpApi, { touser: place.externalId, content: text }, signal());
        }
      } catch (e) {
        d.recorder.outbound({ ...place, partId: msgid, kind: 'operator', content: text, status: 'failed', errcode: e instanceof WechatApiError ? e.errcode : null });
        return refused(e);
      }
      d.recorder.outbound({ ...place, partId: msgid, kind: 'operator', content: text, status: 'sent' });
      await setOperatorHold(d.store, key, true);
      stateChanged(c, 'human');
      d.logger.info({ channel: place.channel, customerId: c.customerId }, 'operator replied; the bot stays quiet for this customer until resume');
      return { ok: true, state: 'human' };
    },
    handOff: async (c) => {
      const place = await placeOf(c);
      if (!place || place.channel !== 'kf') return noChannel('hand-off exists only in WeCom customer service (kf)');
      if (!d.kfApi) return noChannel('the kf channel is not configured');
      try {
        await transferToHuman(
          { api: d.kfApi, store: d.store, log: d.logger },
          { open_kfid: place.account, external_userid: place.externalId, service_state: d.handoff.serviceState, servicer_userid: d.handoff.servicerUserid },
          signal(),
        );
      } catch (e) {
        return refused(e);
      }
      await setOperatorHold(d.store, customerKey('kf', place.account, place.externalId), true);
      stateChanged(c, 'human');
      return { ok: true, state: 'human' };
    },
    resume: async (c) => {
      const place = await placeOf(c);
      const keysToClear = new Set<string>();
      for (const id of c.identities) if (id.channel !== 'kf') keysToClear.add(customerKey(id.channel, id.account, id.externalId));
      if (place) keysToClear.add(customerKey(place.channel, place.account, place.externalId));
      if (place?.channel === 'kf' && d.kfApi) {
        const record = await readServiceState(d.store, place.account, place.externalId);
        if (record && HUMAN_STATES.has(record.state)) {
          try {
            // 4 ends the conversation in WeCom: the customer's next message starts a new one, answered by the bot.
            await d.kfApi.post('kf/service_state/trans', '/cgi-bin/kf/service_state/trans', { open_kfid: place.account, external_userid: place.externalId, service_state: 4 }, signal());
            await recordServiceState(d.store, place.account, place.externalId, 4, 'handoff');
          } catch (e) {
            // From the queue (2) WeCom allows only a servicer taking it (kf §4.1): nothing the bot can end.
            if (e instanceof WechatApiError && record.state === 2) {
              return noChannel('the conversation waits in WeCom\'s queue (state 2): a servicer must take it, or it ends after 48 h');
            }
            return refused(e);
          }
        }
      }
      await Promise.all([...keysToClear].map((k) => setOperatorHold(d.store, k, false)));
      stateChanged(c, 'bot');
      return { ok: true, state: 'bot' };
    },
  };
}
