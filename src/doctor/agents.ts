import type { AgentConfig } from '../config-agents.js';
import { LlmError } from '../errors.js';
import { createAdapter } from '../llm/create-adapter.js';
import { createMetrics } from '../metrics.js';
import { createLlmCall } from '../pipeline/llm-call.js';
import { fail, messageOf, pass, type DoctorResult } from './types.js';

/** The probe every agent gets: short, and harmless in any conversation. */
export const PROBE_TEXT = 'ping: answer with one word';

/**
 * Asks one agent the one-line probe through the same adapter, deadline and retries the server uses (no breaker:
 * one call). The `echo` agent passes without a call.
 * @param timeoutMs the probe's deadline; default the agent's own (LLM_TIMEOUT_MS or its `timeoutMs`)
 */
export async function checkAgent(agent: AgentConfig, timeoutMs?: number): Promise<DoctorResult> {
  const name = `agent ${agent.name} (${agent.provider})`;
  if (agent.provider === 'echo') return pass(name, 'echo answers a text with the same text: nothing to reach (set LLM_PROVIDER for a real model)');
  const deadline = timeoutMs ?? agent.timeoutMs;
  const call = createLlmCall({ adapter: createAdapter(agent), agent: agent.name, timeoutMs: deadline, metrics: createMetrics(), minBackoffMs: 200 });
  const { outcome, seconds } = await call(
    {
      userId: 'doctor',
      text: PROBE_TEXT,
      state: null,
      traceId: `doctor-${Date.now()}`,
      customer: { id: 'cus_doctor', channel: 'doctor', account: 'doctor', externalId: 'doctor' },
    },
    new AbortController().signal,
  );
  const at = target(agent);
  if (outcome.ok) {
    const answer = outcome.result.text.replace(/\s+/g, ' ').trim();
    return pass(name, `answered in ${seconds.toFixed(1)} s from ${at}: ${JSON.stringify(answer.length > 40 ? `${answer.slice(0, 40)}…` : answer)}`);
  }
  if (outcome.reason === 'timeout') {
    return fail(name, `no answer from ${at} within ${deadline} ms`, `check the base URL and the network path to it (a model this slow needs a longer ${agent.name === 'default' ? 'LLM_TIMEOUT_MS' : 'timeoutMs'})`);
  }
  const e = outcome.error;
  const detail = `${at}: ${messageOf(e)}`;
  if (!(e instanceof LlmError)) return fail(name, detail, 'check the agent\'s settings (docs/providers.md)');
  switch (e.kind) {
    case 'auth':
      return fail(name, detail, `check the API key (${keyVar(agent)})`);
    case 'not_found':
      return fail(name, detail, `check the base URL (its path, e.g. /v1) and the ${agent.provider === 'coze' ? 'bot id' : 'model name'}`);
    case 'rate_limit':
      return fail(name, detail, 'the provider refuses for quota or rate: check the account\'s balance and limits');
    case 'bad_request':
      return fail(name, detail, 'the provider refused the request: check the model name and the agent\'s settings (docs/providers.md)');
    case 'upstream':
      return fail(name, detail, /transport failure/.test(e.message) ? 'check the base URL / network (DNS, firewall, proxy) to the provider' : 'the provider failed: try again later, or check its status page');
    default:
      return fail(name, detail, 'check the base URL and the agent\'s settings (docs/providers.md)');
  }
}

function target(agent: AgentConfig): string {
  const url = agent.provider === 'webhook' ? agent.url : 'baseUrl' in agent ? agent.baseUrl : '';
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return agent.provider;
  }
}

function keyVar(agent: AgentConfig): string {
  const own = agent.name !== 'default';
  switch (agent.provider) {
    case 'openai':
    case 'dify':
      return own ? `AGENTS.${agent.name}.apiKey` : `${agent.provider.toUpperCase()}_API_KEY`;
    case 'coze':
      return own ? `AGENTS.${agent.name}.apiToken` : 'COZE_API_TOKEN';
    case 'webhook':
      return own ? `AGENTS.${agent.name}.token` : 'WEBHOOK_TOKEN';
    default:
      return 'the key';
  }
}
