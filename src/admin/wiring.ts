import { WechatApiError } from '../errors.js';
import { imageAsText, imagePartOf } from '../format/image-marker.js';
import type { CustomerRecord } from '../identity/types.js';
import type { FailedReply, MessageLog } from '../log/types.js';
import type { AgentRouter } from '../pipeline/agents.js';
import { customerKey, keys } from '../store/keys.js';
import type { Store } from '../store/types.js';
import type { ApiClient } from '../wechat-api/api-client.js';
import { sendCustomText } from '../channels/wechat-mp/send.js';
import { sendKfText } from '../channels/wecom-kf/send.js';
import { HUMAN_STATES, readServiceState } from '../channels/wecom-kf/service-state.js';
import { operatorHolds } from '../pipeline/operator-hold.js';
import type { IdentityStore } from '../identity/types.js';
import type { WechatEnvelope } from '../wechat-api/http.js';
import type { AdminDeps } from './deps.js';

/** Pages of a customer's log rows read to find the accounts they talked to (kf: their open_kfids). */
const ACCOUNT_SCAN_PAGES = 10;

/**
 * The customer operations of the operator API, over the pipeline's store: a customer's conversations live under
 * `conv:<agent>:<channel>:<account>:<user>` and `rest:<channel>:<account>:<user>`, where a kf account is the
 * `open_kfid` a conversation was on (found in the customer's log rows and AGENT_ROUTES), while the customer's
 * identity names the corp.
 */
export function createCustomerOps(d: {
  store: Store;
  log: MessageLog;
  agents: AgentRouter;
  /** kf accounts named in AGENT_ROUTES (`kf:<open_kfid>`): searched even when the log has forgotten them */
  routedKfAccounts: string[];
  kfApi: ApiClient | null;
  mpApi: ApiClient | null;
  identities: IdentityStore;
}): Pick<AdminDeps, 'resetConversation' | 'exportState' | 'eraseState' | 'stateOf' | 'replayFailure' | 'nicknameOf'> {
  /** Every `<channel>:<account>:<user>` the customer's conversations may live under. */
  const conversationKeys = async (c: CustomerRecord): Promise<string[]> => {
    const out = new Set<string>();
    const kfAccounts = new Set(d.routedKfAccounts);
    for (let cursor: string | null = null, page = 0; page < ACCOUNT_SCAN_PAGES; page++) {
      const p = await d.log.query({ customerId: c.customerId, limit: 200, cursor });
      for (const row of p.items) if (row.channel === 'kf') kfAccounts.add(row.account);
      if (!p.nextCursor) break;
      cursor = p.nextCursor;
    }
    for (const id of c.identities) {
      if (id.channel === 'kf') for (const account of kfAccounts) out.add(customerKey('kf', account, id.externalId));
      else out.add(customerKey(id.channel, id.account, id.externalId));
    }
    return [...out];
  };
  const stateKeys = async (c: CustomerRecord) =>
    (await conversationKeys(c)).flatMap((k) => [...d.agents.all.map((a) => keys.conversation(a.name, k)), keys.pendingRest(k)]);

  return {
    resetConversation: async (c) => {
      const all = await conversationKeys(c);
      await Promise.all(all.flatMap((k) => d.agents.all.map((a) => a.answerer.apply(k, { conversation: null, rest: null }))));
    },
    exportState: async (c) => {
      const entries = await Promise.all((await stateKeys(c)).map(async (k) => [k, await d.store.get(k)] as const));
      return Object.fromEntries(entries.filter(([, v]) => v !== null).map(([k, v]) => [k, parseOrRaw(v as string)]));
    },
    eraseState: async (c) => {
      const all = await conversationKeys(c);
      const extra = all.flatMap((k) => {
        const [channel, account, user] = k.split(':');
        return channel === 'kf' ? [keys.kfServiceState(account ?? '', user ?? '')] : channel === 'mp' ? [keys.mpLocation(k)] : [];
      });
      await Promise.all([...(await stateKeys(c)), ...extra].map((k) => d.store.del(k)));
    },
    stateOf: async (c) => {
      for (const k of await conversationKeys(c)) {
        if (await operatorHolds(d.store, k)) return 'human';
        const [channel, account, user] = k.split(':');
        if (channel !== 'kf') continue;
        const record = await readServiceState(d.store, account ?? '', user ?? '');
        if (record && HUMAN_STATES.has(record.state)) return 'human';
      }
      return 'bot';
    },
    replayFailure: (f) => replay(d, f),
    nicknameOf: async (c) => {
      if (c.nickname) return c.nickname;
      const kf = c.identities.find((i) => i.channel === 'kf');
      if (!kf || !d.kfApi) return null;
      try {
        // One customer per call: the console asks for the customers it shows, and the answer is kept (kf §5.2: cache).
        const res = await d.kfApi.post<WechatEnvelope & { customer_list?: Array<{ external_userid?: string; nickname?: string }> }>(
          'kf/customer/batchget',
          '/cgi-bin/kf/customer/batchget',
          { external_userid_list: [kf.externalId] },
          AbortSignal.timeout(3000),
        );
        const nickname = res.customer_list?.find((x) => x.external_userid === kf.externalId)?.nickname?.trim().slice(0, 64) || null;
        if (nickname) await d.identities.setNickname(c.customerId, nickname);
        return nickname;
      } catch {
        return null;
      }
    },
  };
}

/** Sends a failure's unsent parts again (kf: with their original msgids, so WeCom refuses a repeat). */
async function replay(d: { kfApi: ApiClient | null; mpApi: ApiClient | null }, f: FailedReply) {
  const signal = AbortSignal.timeout(30_000);
  let sent = f.sent;
  try {
    for (let i = f.sent; i < f.parts.length; i++) {
      const part = f.parts[i] as string;
      const image = imagePartOf(part);
      const content = image ? imageAsText(image) : part;
      if (f.channel === 'kf') {
        if (!d.kfApi) throw new Error('the kf channel is not configured');
        const msgid = f.partIds[i] ?? `${f.partIds[0] ?? 'replay'}_${i}`;
        await sendKfText(d.kfApi, { open_kfid: f.account, touser: f.externalId, msgid, content }, { signal, mayHaveBeenSent: true, retries: 1 });
      } else {
        if (!d.mpApi) throw new Error('the Official Account channel has no customer-service API (passive mode)');
        await sendCustomText(d.mpApi, { touser: f.externalId, content }, signal);
      }
      sent = i + 1;
    }
    return { ok: true as const };
  } catch (e) {
    return { ok: false as const, errcode: e instanceof WechatApiError ? e.errcode : null, reason: e instanceof Error ? e.message : String(e), sent };
  }
}

function parseOrRaw(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
