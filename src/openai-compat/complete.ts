import { stripReasoning } from '../format/reasoning.js';
import type { Usage } from '../llm/types.js';
import type { Agent } from '../pipeline/agents.js';
import { keys, customerKey } from '../store/keys.js';
import type { Store } from '../store/types.js';
import type { ChatRequest } from './request.js';

/** What one completion came to. */
export type Completion =
  | { ok: true; text: string; usage: Usage | null; finishReason: 'stop' | 'length' }
  | { ok: false; timeout: boolean; message: string };

const CONVERSATION_TTL_MS = 7 * 24 * 3600_000;

/**
 * Asks `agent` one `/v1` question through its shared LlmCall (the same concurrency limit, circuit breaker, deadline
 * and retries as customers' messages). Stateless agents (openai, ollama, webhook, echo) get the caller's earlier
 * turns; stateful ones (dify, coze) keep their conversation per key and `user` in the store, as a channel does.
 * @param place the caller: `key<N>` and its user, and the operator's customer id for them
 * @param onText the visible answer so far, as it streams (reasoning never shown)
 * @returns the answer, or the failure (never throws, except the signal's reason when the caller hung up)
 */
export async function complete(
  d: { store: Store },
  agent: Agent,
  req: ChatRequest,
  place: { account: string; customerId: string },
  signal: AbortSignal,
  onText?: (visibleSoFar: string) => void,
): Promise<Completion> {
  const convKey = keys.conversation(agent.name, customerKey('openai-compat', place.account, req.user));
  const stored = agent.stateful ? await d.store.get(convKey) : null;
  const { outcome } = await agent.call(
    {
      userId: customerKey('openai-compat', place.account, req.user),
      text: req.text,
      state: stored ? (JSON.parse(stored) as Record<string, unknown>) : null,
      traceId: `v1-${place.account}`,
      customer: { id: place.customerId, channel: 'openai-compat', account: place.account, externalId: req.user },
      ...(agent.stateful ? {} : { history: req.history }),
      ...(onText ? { onText } : {}),
    },
    signal,
  );
  if (!outcome.ok) {
    if (outcome.reason === 'aborted') throw signal.reason ?? new Error('aborted');
    const message = outcome.reason === 'timeout' ? 'the agent did not answer within its deadline' : outcome.reason === 'rejected' ? 'the agent is failing (circuit breaker open)' : 'the agent failed';
    return { ok: false, timeout: outcome.reason === 'timeout', message };
  }
  const visible = stripReasoning(outcome.result.text);
  if (visible === null || outcome.result.finishReason === 'filtered' || outcome.result.finishReason === 'other' || !visible.trim()) {
    return { ok: false, timeout: false, message: 'the agent gave no usable answer' };
  }
  if (agent.stateful && outcome.result.state) await d.store.set(convKey, JSON.stringify(outcome.result.state), CONVERSATION_TTL_MS);
  return { ok: true, text: visible, usage: outcome.result.usage, finishReason: outcome.result.finishReason === 'length' ? 'length' : 'stop' };
}
