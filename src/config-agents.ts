import { z } from 'zod';
import { parseJsonObjectSetting } from './json-setting.js';

/**
 * Named agents (docs/configuration.md `AGENTS`, `AGENT_ROUTES`): several LLM apps in one deployment, each with its own
 * provider settings, system prompt, deadline, fallback texts and welcome. The `default` agent is built from
 * LLM_PROVIDER and its variables and answers everything no route names.
 */

/** Settings every agent has (defaults from the global variables). */
export interface AgentCommon {
  /** `default` for the LLM_PROVIDER agent; otherwise the AGENTS key (`[A-Za-z0-9_-]`, ≤ 32) */
  name: string;
  systemPrompt: string | null;
  /** one deadline per customer message, ms */
  timeoutMs: number;
  replyOnTimeout: string;
  replyOnError: string;
  /** null: none */
  welcome: string | null;
  /** longest silence between two stream chunks, ms */
  idleMs: number;
  /** LLM calls of this agent at once, per process */
  maxConcurrency: number;
}

export type AgentConfig = AgentCommon &
  (
    | { provider: 'echo' }
    | { provider: 'openai'; baseUrl: string; apiKey: string; model: string; vision: boolean }
    | { provider: 'dify'; baseUrl: string; apiKey: string; mode: 'chat' | 'workflow'; inputKey: string; outputKey: string }
    | { provider: 'coze'; baseUrl: string; apiToken: string; botId: string }
    | { provider: 'ollama'; baseUrl: string; model: string; keepAlive: string | null }
    /** your own HTTP endpoint as the agent (docs/configuration.md "Webhook agent"); token: Bearer, null for none */
    | { provider: 'webhook'; url: string; token: string | null }
  );

export type Provider = AgentConfig['provider'];

export const DEFAULT_BASE_URLS = {
  openai: 'https://api.openai.com/v1',
  dify: 'https://api.dify.ai/v1',
  coze: 'https://api.coze.cn',
  ollama: 'http://127.0.0.1:11434',
} as const;

const AGENT_NAME = /^[A-Za-z0-9_-]{1,32}$/;
/** Dify pings every ~10 s; 30 s of silence means the stream is dead. */
export const DEFAULT_IDLE_MS = 30_000;
/** Per agent and process: enough for a busy account, low enough not to trip a provider's concurrency limit. */
export const DEFAULT_MAX_CONCURRENCY = 32;
const ROUTE_KEY = /^(kf|mp|bot):[A-Za-z0-9_@.-]{1,128}$/;

const nonEmpty = z.string().trim().min(1);
const url = z
  .string()
  .trim()
  // `api.deepseek.com` would otherwise be refused as just "Invalid URL".
  .refine((v) => /^[a-z][a-z0-9+.-]*:\/\//i.test(v), { message: 'has no scheme: add https:// (or http://) in front, e.g. https://api.deepseek.com', abort: true })
  .pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }))
  .transform((v) => v.replace(/\/+$/, ''));
/** A host-only origin: Coze paths (/v3/chat, /v1/…) are added by the adapter. */
export const hostOnly = (v: string) => new URL(v).pathname.replace(/\/+$/, '') === '';
const common = {
  timeoutMs: z.number().int().min(100).max(600_000).optional(),
  /** longest silence between two stream chunks, ms (default 30 s): raise it for bots with slow tool steps */
  idleMs: z.number().int().min(1000).max(600_000).optional(),
  /**
   * LLM calls of this agent at once in one process (default 32): the provider's own rate limit, not ours. Up to
   * 10,000: a slow agent (tools, long reasoning) with a generous provider may keep thousands of customers waiting at
   * once, each an idle socket.
   */
  maxConcurrency: z.number().int().min(1).max(10_000).optional(),
  replyOnTimeout: nonEmpty.optional(),
  replyOnError: nonEmpty.optional(),
  welcome: nonEmpty.optional(),
};
// strictObject: a misspelt key (`apikey`) is reported instead of silently ignored.
const agentSchema = z.discriminatedUnion('provider', [
  z.strictObject({ provider: z.literal('echo'), ...common }),
  z.strictObject({
    provider: z.literal('openai'),
    baseUrl: url.default(DEFAULT_BASE_URLS.openai),
    apiKey: nonEmpty,
    model: nonEmpty.default('gpt-4o-mini'),
    vision: z.boolean().default(true),
    systemPrompt: z.string().optional(),
    ...common,
  }),
  z.strictObject({
    provider: z.literal('dify'),
    baseUrl: url.default(DEFAULT_BASE_URLS.dify),
    apiKey: nonEmpty,
    mode: z.enum(['chat', 'workflow']).default('chat'),
    inputKey: nonEmpty.default('query'),
    outputKey: nonEmpty.default('text'),
    ...common,
  }),
  z.strictObject({
    provider: z.literal('webhook'),
    url,
    token: nonEmpty.optional(),
    ...common,
  }),
  z.strictObject({
    provider: z.literal('coze'),
    baseUrl: url.default(DEFAULT_BASE_URLS.coze).refine(hostOnly, 'must be the origin only, e.g. https://api.coze.cn'),
    apiToken: nonEmpty,
    botId: nonEmpty,
    ...common,
  }),
  z.strictObject({
    provider: z.literal('ollama'),
    baseUrl: url.default(DEFAULT_BASE_URLS.ollama),
    model: nonEmpty,
    // Ollama's duration: a number of seconds (-1: forever) or e.g. "30m", "1h", "90s".
    keepAlive: z
      .union([z.string().trim().regex(/^-?\d+(\.\d+)?(ms|s|m|h)?$/, 'must be seconds or a duration such as "30m"'), z.number().int()])
      .transform(String)
      .optional(),
    systemPrompt: z.string().optional(),
    ...common,
  }),
]);

/** Global defaults a named agent inherits (never the default agent's provider settings or system prompt). */
export interface AgentDefaults {
  timeoutMs: number;
  replyOnTimeout: string;
  replyOnError: string;
  welcome: string | null;
}

/**
 * Parses `AGENTS` (a JSON object of name → settings). Values are never echoed: they hold API keys.
 * @returns the agents, or the problems (`AGENTS.<name>.<field>: …`), all of them
 */
export function parseAgents(raw: string | undefined, d: AgentDefaults): { agents: AgentConfig[]; problems: string[] } {
  if (raw === undefined) return { agents: [], problems: [] };
  const parsed = parseJsonObjectSetting('AGENTS', raw, 'named agents {"sales":{"provider":"dify","apiKey":"app-…"}}');
  if ('problem' in parsed) return { agents: [], problems: [parsed.problem] };
  const agents: AgentConfig[] = [];
  const problems: string[] = [];
  for (const [name, value] of parsed.entries) {
    if (!AGENT_NAME.test(name) || name === 'default') {
      problems.push(`AGENTS: agent name ${JSON.stringify(name.slice(0, 40))} must be 1-32 letters, digits, _ or - (and not "default")`);
      continue;
    }
    const parsed = agentSchema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(`AGENTS.${[name, ...issue.path].join('.')}: ${issue.message}`);
      continue;
    }
    const a = parsed.data;
    agents.push({
      ...a,
      name,
      systemPrompt: 'systemPrompt' in a ? (a.systemPrompt ?? null) : null,
      idleMs: a.idleMs ?? DEFAULT_IDLE_MS,
      maxConcurrency: a.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
      timeoutMs: a.timeoutMs ?? d.timeoutMs,
      replyOnTimeout: a.replyOnTimeout ?? d.replyOnTimeout,
      replyOnError: a.replyOnError ?? d.replyOnError,
      welcome: a.welcome ?? d.welcome,
      ...(a.provider === 'ollama' ? { keepAlive: a.keepAlive ?? null } : {}),
      ...(a.provider === 'webhook' ? { token: a.token ?? null } : {}),
    } as AgentConfig);
  }
  return { agents, problems };
}

/**
 * Parses `AGENT_ROUTES`: `{"kf:<open_kfid>": "<agent>", "mp:<AppID>": "<agent>", "bot:<aibotid>": "<agent>"}`.
 * @param names the agents that exist (`default` included)
 */
export function parseRoutes(
  raw: string | undefined,
  names: ReadonlySet<string>,
  mpAppId: string | null = null,
): { routes: Record<string, string>; problems: string[] } {
  if (raw === undefined) return { routes: {}, problems: [] };
  const parsed = parseJsonObjectSetting('AGENT_ROUTES', raw, '{"kf:wkAbc…":"sales","mp:wx123…":"mp"}');
  if ('problem' in parsed) return { routes: {}, problems: [parsed.problem] };
  const routes: Record<string, string> = {};
  const problems: string[] = [];
  for (const [key, agent] of parsed.entries) {
    if (!ROUTE_KEY.test(key)) problems.push(`AGENT_ROUTES: ${JSON.stringify(key.slice(0, 80))} must be kf:<open_kfid>, mp:<AppID> or bot:<aibotid>`);
    // One Official Account per deployment: another AppID is a typo that would send that traffic to the default.
    else if (mpAppId !== null && key.startsWith('mp:') && key !== `mp:${mpAppId}`) {
      problems.push(`AGENT_ROUTES: ${JSON.stringify(key)} names an AppID other than WECHAT_MP_APP_ID`);
    } else if (typeof agent !== 'string' || !names.has(agent)) {
      problems.push(`AGENT_ROUTES.${key}: ${JSON.stringify(String(agent).slice(0, 40))} is not an agent in AGENTS`);
    } else routes[key] = agent;
  }
  return { routes, problems };
}
