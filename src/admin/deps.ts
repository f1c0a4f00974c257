import type { CustomerRecord, IdentityStore } from '../identity/types.js';
import type { FailedReply, FailureStore, MessageLog } from '../log/types.js';
import type { Metrics } from '../metrics.js';
import type { EventBus } from './event-bus.js';
import type { OperatorActions } from './operator-actions.js';

/**
 * What the operator API needs, built by deps.ts (tests pass the real thing over fakes). The customer operations
 * reach the conversation state the pipeline keeps, which only the wiring knows how to find.
 */
export interface AdminDeps {
  /** ADMIN_TOKEN */
  token: string;
  version: string;
  /** epoch ms the process started */
  startedAtMs: number;
  role: 'all' | 'web' | 'worker';
  storeKind: 'memory' | 'redis';
  channels: { kf: boolean; mp: boolean; bot: boolean };
  /** `default` first, then the AGENTS names */
  agents: string[];
  log: MessageLog;
  failures: FailureStore;
  identities: IdentityStore;
  /** resolves when Redis (if configured) answers; rejects otherwise */
  checkReady(): Promise<void>;
  queueCounts(): Promise<{ waiting: number; active: number; delayed: number }>;
  /** Clears the customer's conversation with every agent (as a reset keyword would). */
  resetConversation(customer: CustomerRecord): Promise<void>;
  /** Everything the store keeps for the customer's conversations, by key (for export). */
  exportState(customer: CustomerRecord): Promise<Record<string, unknown>>;
  /** Deletes the customer's conversation state, pending answers and channel records. */
  eraseState(customer: CustomerRecord): Promise<void>;
  /**
   * The customer's nickname: the stored one, else (kf) WeCom's `kf/customer/batchget`, stored for next time; null
   * when none can be had (OA gives none, WeCom refused or timed out). Never throws.
   */
  nicknameOf(customer: CustomerRecord): Promise<string | null>;
  /** `bot` unless a human holds one of the customer's conversations. */
  stateOf(customer: CustomerRecord): Promise<'bot' | 'human'>;
  /**
   * Sends a failed reply's unsent parts again, with their original outbound ids (kf: WeCom refuses a repeat, so a
   * part that did arrive is not delivered twice).
   * @returns ok, or the platform's refusal
   */
  replayFailure(f: FailedReply): Promise<{ ok: true } | { ok: false; errcode: number | null; reason: string; sent: number }>;
  /** reply, handoff, resume */
  actions: OperatorActions;
  /** new log rows and state changes for `/admin/events` */
  events: EventBus;
  /** this process's metrics, for `/admin/summary` */
  metrics: Metrics;
  /**
   * `npm run doctor`'s checks of this process's configuration against the real world (tokens, agents, Redis, MySQL,
   * clock; never a long-connection subscribe, which would evict the running connection)
   */
  doctor(): Promise<Array<{ name: string; ok: boolean; detail: string; fix?: string; warning?: boolean }>>;
  /** the session cookie's settings (the console's login): null in tests that only use the Bearer token */
  session: SessionKeys | null;
}

/** Derived from ADMIN_TOKEN (admin/session.ts), so every replica and restart accepts the same cookie. */
export interface SessionKeys {
  /** HMAC key of the session cookie */
  cookieKey: Buffer;
  /** HMAC key of the CSRF token derived from a session */
  csrfKey: Buffer;
}
