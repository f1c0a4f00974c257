import type { Store } from '../store/types.js';

/**
 * An operator took a conversation over from the console or the operator API (`reply`, `handoff`): the bot stays
 * quiet for that customer until `resume` (interface.md "Operator API"). Kept 30 days: long enough that a forgotten
 * `resume` is noticed by the operator, not by a customer suddenly answered by the bot again mid-conversation.
 */
const HOLD_TTL_MS = 30 * 24 * 3600_000;

/** @param customer `customerKey(channel, account, user)` */
const holdKey = (customer: string) => `operator-hold:${customer}`;

/** Whether an operator holds the conversation. @throws when the store does not answer */
export async function operatorHolds(store: Store, customer: string): Promise<boolean> {
  return (await store.get(holdKey(customer))) !== null;
}

/** Sets (`on`) or clears the operator's hold on a conversation. @throws when the store does not answer */
export async function setOperatorHold(store: Store, customer: string, on: boolean): Promise<void> {
  if (on) await store.set(holdKey(customer), String(Date.now()), HOLD_TTL_MS);
  else await store.del(holdKey(customer));
}
