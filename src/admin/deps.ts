import type { CustomerRecord, IdentityStore } from '../identity/types.js';
import type { FailedReply, FailureStore, MessageLog } from '../log/types.js';

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
  /** `bot` unless a human holds one of the customer's conversations. */
  stateOf(customer: CustomerRecord): Promise<'bot' | 'human'>;
  /**
   * Sends a failed reply's unsent parts again, with their original outbound ids (kf: WeCom refuses a repeat, so a
   * part that did arrive is not delivered twice).
   * @returns ok, or the platform's refusal
   */
  replayFailure(f: FailedReply): Promise<{ ok: true } | { ok: false; errcode: number | null; reason: string; sent: number }>;
}
