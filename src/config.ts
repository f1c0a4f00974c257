import { z } from 'zod';
import { DEFAULT_BASE_URLS, DEFAULT_IDLE_MS, DEFAULT_MAX_CONCURRENCY, hostOnly, parseAgents, parseRoutes, type AgentConfig } from './config-agents.js';
import { parseBots, type BotConfig } from './config-bots.js';
import { ConfigError } from './errors.js';
import { parseJsonSetting } from './json-setting.js';

/**
 * Configuration from the environment, validated once at boot. Names and defaults are fixed by
 * docs/configuration.md ("Environment"); only the variables the built features use are read here.
 */

const SECRET_NAMES = new Set([
  'WECOM_KF_SECRET',
  'WECOM_TOKEN',
  'WECOM_ENCODING_AES_KEY',
  'WECHAT_MP_APP_SECRET',
  'WECHAT_MP_TOKEN',
  'WECHAT_MP_ENCODING_AES_KEY',
  'OPENAI_API_KEY',
  'DIFY_API_KEY',
  'COZE_API_TOKEN',
  'AGENTS',
  'REDIS_URL',
  'REDIS_PASSWORD',
  'METRICS_TOKEN',
  'ADMIN_TOKEN',
  'OPENAI_COMPAT_API_KEYS',
  'MYSQL_URL',
  'WEBHOOK_TOKEN',
  'WECOM_BOTS',
  // may carry the proxy's user:password
  'WECHAT_API_PROXY',
]);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const list = z
  .string()
  .transform((v) =>
    v
      .split(/[,，]/)
      .map((s) => s.trim())
      .filter(Boolean),
  );

const httpUrl = z
  .string()
  .trim()
  // `api.deepseek.com` would otherwise be refused as just "Invalid URL".
  .refine((v) => /^[a-z][a-z0-9+.-]*:\/\//i.test(v), { message: 'has no scheme: add https:// (or http://) in front, e.g. https://api.deepseek.com', abort: true })
  .pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }))
  .transform((v) => v.replace(/\/+$/, ''));

const text = (fallback: string) => z.string().default(fallback);

/** One of `values`, read case-insensitively and trimmed like the booleans (`Passive` is `passive`). */
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => z.string().trim().toLowerCase().pipe(z.enum(values));

const aesKey = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9]{43}$/, 'must be exactly 43 letters or digits');

/** `{"<EventKey>": "<text>"}`: a JSON object of non-empty strings. */
const clickReplies = z
  .string()
  .transform((v, ctx) => {
    const parsed = parseJsonSetting(v);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: 'custom', message: `${parsed.problem}; it must be a JSON object such as {"MENU_KEY":"text"}` });
    return z.NEVER;
  })
  .pipe(z.record(z.string().min(1), z.string().trim().min(1, 'each reply text must be non-empty'), 'must be a JSON object of texts'));

const schema = z.object({
  PORT: int(0, 65535).default(3000),
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ROLE: oneOf(['all', 'web', 'worker']).default('all'),

  WECOM_CORP_ID: z.string().trim().min(1).optional(),
  WECOM_KF_SECRET: z.string().trim().min(1).optional(),
  WECOM_TOKEN: z.string().trim().min(1).optional(),
  WECOM_ENCODING_AES_KEY: aesKey.optional(),
  WECOM_API_BASE_URL: httpUrl.default('https://qyapi.weixin.qq.com'),
  KF_COLD_START_MAX_AGE_S: int(0).default(300),
  KF_MAX_MESSAGE_AGE_S: int(1).default(172800),
  WECOM_BOTS: z.string().optional(),
  WECOM_BOT_WS_URL: z.string().trim().regex(/^wss?:\/\//, 'must start with wss:// (or ws:// for a local test server)').default('wss://openws.work.weixin.qq.com'),

  WECHAT_MP_APP_ID: z.string().trim().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be the AppID (letters, digits)').optional(),
  WECHAT_MP_APP_SECRET: z.string().trim().min(1).optional(),
  WECHAT_MP_TOKEN: z.string().trim().min(1).optional(),
  WECHAT_MP_ENCODING_AES_KEY: aesKey.optional(),
  WECHAT_MP_API_BASE_URL: httpUrl.default('https://api.weixin.qq.com'),
  WECHAT_MP_REPLY_MODE: oneOf(['active', 'passive', 'auto']).default('active'),
  WECHAT_MP_AUTO_HOLD_MS: int(0, 4500).default(2000),
  WECHAT_MP_PASSIVE_HOLD_MS: int(50, 60_000).default(5500),
  WECHAT_MP_PASSIVE_LAST_MS: int(50, 60_000).default(4500),
  WECHAT_MP_CLICK_REPLIES: clickReplies.optional(),
  WECHAT_API_PROXY: z
    .string()
    .trim()
    .refine((v) => /^https?:\/\//i.test(v), { message: 'must be an http:// or https:// proxy URL, e.g. http://user:password@10.0.0.5:3128', abort: true })
    .refine((v) => URL.canParse(v) && new URL(v).hostname !== '', 'is not a valid URL: use http://[user:password@]host:port')
    .optional(),

  LLM_PROVIDER: oneOf(['echo', 'openai', 'dify', 'coze', 'ollama', 'webhook']).default('echo'),
  LLM_SYSTEM_PROMPT: z.string().optional(),
  LLM_TIMEOUT_MS: int(100).default(60000),
  OPENAI_BASE_URL: httpUrl.default('https://api.openai.com/v1'),
  OPENAI_API_KEY: z.string().trim().min(1).optional(),
  OPENAI_MODEL: z.string().trim().min(1).default('gpt-4o-mini'),
  OPENAI_VISION: bool.default(true),
  DIFY_BASE_URL: httpUrl.default(DEFAULT_BASE_URLS.dify),
  DIFY_API_KEY: z.string().trim().min(1).optional(),
  COZE_BASE_URL: httpUrl.default(DEFAULT_BASE_URLS.coze).refine(hostOnly, 'must be the origin only, e.g. https://api.coze.cn'),
  COZE_API_TOKEN: z.string().trim().min(1).optional(),
  COZE_BOT_ID: z.string().trim().min(1).optional(),
  OLLAMA_BASE_URL: httpUrl.default(DEFAULT_BASE_URLS.ollama),
  OLLAMA_MODEL: z.string().trim().min(1).optional(),
  WEBHOOK_URL: httpUrl.optional(),
  WEBHOOK_TOKEN: z.string().trim().min(1).optional(),
  AGENTS: z.string().optional(),
  AGENT_ROUTES: z.string().optional(),

  WELCOME_MESSAGE: z.string().optional(),
  RESET_KEYWORDS: list.default(['重置', 'reset', '重新开始', '清空对话']),
  CONTINUE_KEYWORDS: list.default(['继续']),
  HANDOFF_KEYWORDS: list.default(['人工', '转人工', '人工客服']),
  HANDOFF_SERVICE_STATE: oneOf(['2', '3']).default('2'),
  HANDOFF_SERVICER_USERID: z.string().trim().min(1).optional(),
  REPLY_ON_HANDOFF: text('正在为您转接人工客服，请稍候。'),
  REPLY_ON_TIMEOUT: text('抱歉，回答超时了，请稍后再试。'),
  REPLY_ON_ERROR: text('抱歉，服务暂时不可用，请稍后再试。'),
  REPLY_ON_RESET: text('好的，我们重新开始吧。'),
  REPLY_UNSUPPORTED: text('抱歉，暂时还不支持这种消息类型，请用文字描述您的问题。'),
  REPLY_STILL_THINKING: text('正在思考中，请稍后发送任意消息获取回答。'),
  REPLY_ON_RATE_LIMIT: text('您发送消息太频繁了，请稍等一分钟再发。'),
  RATE_LIMIT_PER_CUSTOMER_PER_MIN: int(0, 100_000).default(20),

  MEDIA_MAX_BYTES: int(1024, 50 * 1024 * 1024).default(10 * 1024 * 1024),
  FETCH_ALLOW_HOSTS: z.string().optional(),
  ANSWER_IMAGE_ALLOW_HOSTS: z.string().optional(),
  FILE_MAX_BYTES: int(1024, 50 * 1024 * 1024).default(5 * 1024 * 1024),
  MAX_BODY_BYTES: int(256, 16 * 1024 * 1024).default(65536),
  CALLBACK_MAX_SKEW_S: int(0).default(300),
  METRICS_TOKEN: z.string().trim().min(1).optional(),
  ADMIN_TOKEN: z.string().trim().min(1).optional(),
  OPENAI_COMPAT_API_KEYS: list.optional(),
  MYSQL_URL: z
    .string()
    .trim()
    .regex(/^mysql:\/\//, 'must start with mysql://, e.g. mysql://bridge:password@127.0.0.1:3306/bridge')
    .optional(),
  MESSAGE_LOG_MEMORY_LIMIT: int(100, 1_000_000).default(10_000),
  LOG_MESSAGE_CONTENT: bool.default(true),
  MESSAGE_RETENTION_DAYS: int(1, 36_500).default(180),
  REDIS_URL: z
    .string()
    .trim()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .trim()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[A-Za-z0-9_.-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/, 'each seed must be host:port, e.g. 10.0.0.5:6379')).min(1, 'name at least one host:port'))
    .optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  QUEUE_SHARDS: int(1, 64).optional(),
});

type Env = z.infer<typeof schema>;

/** The kf channel's settings; present only when all four required variables are set. */
export interface KfConfig {
  corpId: string;
  kfSecret: string;
  token: string;
  encodingAesKey: string;
  apiBaseUrl: string;
  /** seconds */
  coldStartMaxAgeS: number;
  /** seconds */
  maxMessageAgeS: number;
}

/** How an Official Account answers (docs/configuration.md `WECHAT_MP_REPLY_MODE`). */
export type MpReplyMode = 'active' | 'passive' | 'auto';

/** The Official Account channel's settings; present when WECHAT_MP_APP_ID and WECHAT_MP_TOKEN are set. */
export interface MpConfig {
  appId: string;
  /** null only in passive mode (no API calls are made then) */
  appSecret: string | null;
  token: string;
  /** null: plaintext mode only (an `encrypt_type=aes` push is refused) */
  encodingAesKey: string | null;
  apiBaseUrl: string;
  replyMode: MpReplyMode;
  /** auto mode: how long the first delivery waits for a passive answer (ms) */
  autoHoldMs: number;
  /** passive mode: how long deliveries 1 and 2 are held when the answer is not ready (ms; past WeChat's 5 s) */
  passiveHoldMs: number;
  /** passive mode: when the third delivery gives up with REPLY_STILL_THINKING (ms; within WeChat's 5 s) */
  passiveLastMs: number;
  /** menu `EventKey` → text sent when that button is clicked */
  clickReplies: Record<string, string>;
}

/** The default agent's variables as read (LLM_PROVIDER and its variables); `agents[0]` is the same agent, resolved. */
export interface LlmConfig {
  provider: AgentConfig['provider'];
  systemPrompt: string | null;
  /** One deadline per customer message, covering every attempt and backoff (ms). */
  timeoutMs: number;
  openai: { baseUrl: string; apiKey: string | null; model: string; vision: boolean };
}

/** Limits for everything the bridge downloads on a customer's behalf. */
export interface MediaConfig {
  /** MEDIA_MAX_BYTES: largest image/file downloaded (bytes) */
  maxBytes: number;
  /**
   * FETCH_ALLOW_HOSTS: host names and CIDRs that may be fetched although they are loopback/private (raw,
   * comma-separated; empty = public addresses only)
   */
  allowHosts: string;
  /**
   * ANSWER_IMAGE_ALLOW_HOSTS: the same for images an agent's answer links (raw, comma-separated). Kept apart from
   * `allowHosts`: a prompt-injected `![](…)` in an answer must not reach what customers' links may.
   */
  answerImageAllowHosts: string;
  /** FILE_MAX_BYTES: largest customer file (PDF, text) read, bytes; `maxBytes` still bounds images */
  fileMaxBytes: number;
}

/** Texts the customer may see. */
export interface Replies {
  onTimeout: string;
  onError: string;
  onReset: string;
  unsupported: string;
  /** OA passive mode: the last delivery's answer while the LLM is still working */
  stillThinking: string;
  /** told once per minute to a customer past RATE_LIMIT_PER_CUSTOMER_PER_MIN */
  rateLimited: string;
  /** kf: the answer to a hand-off keyword */
  onHandoff: string;
  welcome: string | null;
}

export interface Config {
  port: number;
  host: string;
  logLevel: Env['LOG_LEVEL'];
  /** `all`: routes and background work; `web`: routes only (hand-off to Redis); `worker`: background work only */
  role: 'all' | 'web' | 'worker';
  kf: KfConfig | null;
  mp: MpConfig | null;
  /** WECOM_BOTS: smart bots in their JSON order (empty: no smart bot) */
  bots: BotConfig[];
  /** WECOM_BOT_WS_URL: the long-connection endpoint */
  botWsUrl: string;
  /**
   * WECHAT_API_PROXY: the http(s) proxy every WeCom / WeChat API call goes through (a fixed egress IP for the
   * trusted-IP lists), e.g. `http://user:pass@10.0.0.5:3128`; null: direct. Holds credentials: log it masked only.
   */
  wechatApiProxy: string | null;
  llm: LlmConfig;
  /** every agent, the `default` one (LLM_PROVIDER) first, then AGENTS in their order */
  agents: AgentConfig[];
  /** AGENT_ROUTES: `kf:<open_kfid>` / `mp:<AppID>` / `bot:<aibotid>` → agent name; unrouted traffic uses `default` */
  routes: Record<string, string>;
  replies: Replies;
  keywords: { reset: string[]; continue: string[]; handoff: string[] };
  /** kf hand-off target (HANDOFF_SERVICE_STATE / HANDOFF_SERVICER_USERID) */
  handoff: { serviceState: 2 | 3; servicerUserid: string | null };
  /** media and page downloads (customer images and files, links, images in answers) */
  media: MediaConfig;
  /** customer messages answered per minute per customer; 0 = no limit */
  rateLimitPerMin: number;
  /** bytes */
  maxBodyBytes: number;
  /** seconds; 0 turns the check off */
  callbackMaxSkewS: number;
  /** REDIS_URL: one Redis (or null) */
  redisUrl: string | null;
  /** REDIS_CLUSTER_NODES (+ REDIS_PASSWORD): a Redis Cluster instead of REDIS_URL, or null */
  redisCluster: RedisClusterConfig | null;
  /**
   * QUEUE_SHARDS: how many BullMQ queues the answers are spread over (a customer always maps to the same one).
   * Default 1 with REDIS_URL, 6 with a cluster (each shard's keys share one hash tag, so one shard lives on one master).
   */
  queueShards: number;
  /** METRICS_TOKEN: the Bearer token /metrics needs; null: /metrics is open */
  metricsToken: string | null;
  /** ADMIN_TOKEN: the operator API's Bearer token and the console's password; null: /admin and /console answer 404 */
  adminToken: string | null;
  /** OPENAI_COMPAT_API_KEYS: keys /v1 accepts (position + 1 is the `key<N>` account); empty: /v1 answers 404 */
  openaiCompatKeys: string[];
  /** the message log and customer identities */
  data: DataConfig;
}

/** Where the message log and customer identities live, and what they keep. */
/** A Redis Cluster's seeds (REDIS_CLUSTER_NODES) and password (REDIS_PASSWORD). */
export interface RedisClusterConfig {
  /** seed nodes; the client discovers the rest (CLUSTER SLOTS) */
  nodes: { host: string; port: number }[];
  password: string | null;
}

/** QUEUE_SHARDS with a cluster and no value: two per master of the usual three-master cluster. */
export const DEFAULT_CLUSTER_SHARDS = 6;

/** `host:port` or `[v6]:port` → parts (validated by the schema). */
function parseHostPort(s: string): { host: string; port: number } {
  const at = s.lastIndexOf(':');
  return { host: s.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(s.slice(at + 1)) };
}

export interface DataConfig {
  /** MYSQL_URL, or null: the log is a capped Redis stream (REDIS_URL) or this process's memory */
  mysqlUrl: string | null;
  /** MESSAGE_LOG_MEMORY_LIMIT: rows kept without MySQL */
  memoryLimit: number;
  /** LOG_MESSAGE_CONTENT: false keeps type and length only */
  logContent: boolean;
  /** MESSAGE_RETENTION_DAYS: rows older than this are deleted daily */
  retentionDays: number;
}

const KF_VARS = ['WECOM_CORP_ID', 'WECOM_KF_SECRET', 'WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY'] as const;
const MP_VARS = ['WECHAT_MP_APP_ID', 'WECHAT_MP_TOKEN', 'WECHAT_MP_APP_SECRET', 'WECHAT_MP_ENCODING_AES_KEY'] as const;

/**
 * Reads and validates the configuration.
 * @param env usually `process.env` (after dotenv); values are strings, empty strings count as unset.
 * @throws ConfigError listing every problem by variable name; secret values are never included.
 */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = schema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? '?');
      const shown = SECRET_NAMES.has(name) ? '' : describeValue(cleaned[name]);
      problems.push(`${name}: ${issue.message}${shown}`);
    }
  }
  // Cross-variable checks look at presence in the raw values, so they are reported together with the value
  // problems above (one start-up shows every problem, not one batch per restart).
  problems.push(...crossChecks(cleaned));
  const e = parsed.success ? parsed.data : null;
  if (!e) {
    // The agents' own problems belong in the same report even when other variables are bad.
    const d = { timeoutMs: 60_000, replyOnTimeout: '-', replyOnError: '-', welcome: null };
    const named = parseAgents(cleaned.AGENTS, d);
    const names = new Set(['default', ...named.agents.map((a) => a.name)]);
    const routes = parseRoutes(cleaned.AGENT_ROUTES, names, cleaned.WECHAT_MP_APP_ID?.trim() ?? null);
    throw new ConfigError([...problems, ...named.problems, ...routes.problems, ...parseBots(cleaned.WECOM_BOTS).problems]);
  }
  const config = toConfig(e);
  const bots = parseBots(e.WECOM_BOTS);
  config.bots = bots.bots;
  problems.push(...bots.problems);
  problems.push(...resolveAgents(config, e));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Adds the default agent and AGENTS to `config`, then AGENT_ROUTES. @returns their problems */
function resolveAgents(config: Config, e: Env): string[] {
  const replies = config.replies;
  const defaults = { timeoutMs: e.LLM_TIMEOUT_MS, replyOnTimeout: replies.onTimeout, replyOnError: replies.onError, welcome: replies.welcome };
  const named = parseAgents(e.AGENTS, defaults);
  config.agents = [defaultAgent(e, defaults), ...named.agents];
  const routes = parseRoutes(e.AGENT_ROUTES, new Set(config.agents.map((a) => a.name)), config.mp?.appId ?? null);
  config.routes = routes.routes;
  return [...named.problems, ...routes.problems];
}

function defaultAgent(e: Env, d: Omit<AgentConfig, 'name' | 'provider' | 'systemPrompt' | 'idleMs' | 'maxConcurrency'>): AgentConfig {
  const base = { ...d, name: 'default', systemPrompt: e.LLM_SYSTEM_PROMPT ?? null, idleMs: DEFAULT_IDLE_MS, maxConcurrency: DEFAULT_MAX_CONCURRENCY };
  switch (e.LLM_PROVIDER) {
    case 'openai':
      return { ...base, provider: 'openai', baseUrl: e.OPENAI_BASE_URL, apiKey: e.OPENAI_API_KEY ?? '', model: e.OPENAI_MODEL, vision: e.OPENAI_VISION };
    case 'dify':
      return { ...base, provider: 'dify', baseUrl: e.DIFY_BASE_URL, apiKey: e.DIFY_API_KEY ?? '', mode: 'chat', inputKey: 'query', outputKey: 'text' };
    case 'coze':
      return { ...base, provider: 'coze', baseUrl: e.COZE_BASE_URL, apiToken: e.COZE_API_TOKEN ?? '', botId: e.COZE_BOT_ID ?? '' };
    case 'ollama':
      return { ...base, provider: 'ollama', baseUrl: e.OLLAMA_BASE_URL, model: e.OLLAMA_MODEL ?? '', keepAlive: null };
    case 'webhook':
      return { ...base, provider: 'webhook', url: e.WEBHOOK_URL ?? '', token: e.WEBHOOK_TOKEN ?? null };
    default:
      return { ...base, provider: 'echo' };
  }
}

function describeValue(v: string | undefined): string {
  if (v === undefined) return '';
  // A URL may carry credentials (https://user:pass@host): never echo them.
  const shown = v.replace(/\/\/[^/@\s]*@/, '//***@');
  const short = shown.length > 40 ? `${shown.slice(0, 40)}…` : shown;
  return ` (got ${JSON.stringify(short)})`;
}

/** @param e the non-empty raw values (a set but invalid value counts as set: its own problem is listed already) */
function crossChecks(e: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const kfSet = KF_VARS.filter((n) => e[n] !== undefined);
  if (kfSet.length > 0 && kfSet.length < KF_VARS.length) {
    const missing = KF_VARS.filter((n) => e[n] === undefined);
    problems.push(`kf channel is partly configured: missing ${missing.join(', ')}`);
  }
  problems.push(...mpCrossChecks(e));
  if (e.HANDOFF_SERVICE_STATE === '3' && e.HANDOFF_SERVICER_USERID === undefined) {
    problems.push('HANDOFF_SERVICE_STATE=3 needs HANDOFF_SERVICER_USERID (the servicer who takes the conversation)');
  }
  const required: Record<string, string[]> = {
    openai: ['OPENAI_API_KEY'],
    dify: ['DIFY_API_KEY'],
    coze: ['COZE_API_TOKEN', 'COZE_BOT_ID'],
    ollama: ['OLLAMA_MODEL'],
    webhook: ['WEBHOOK_URL'],
  };
  const provider = e.LLM_PROVIDER?.trim().toLowerCase() ?? '';
  for (const name of required[provider] ?? []) {
    if (!e[name]) problems.push(`${name}: required when LLM_PROVIDER=${provider}`);
  }
  const role = e.ROLE?.trim().toLowerCase();
  if ((role === 'web' || role === 'worker') && !e.REDIS_URL && !e.REDIS_CLUSTER_NODES) {
    problems.push(`ROLE: "${role}" needs REDIS_URL or REDIS_CLUSTER_NODES (the web and worker processes meet in Redis)`);
  }
  if (e.REDIS_URL && e.REDIS_CLUSTER_NODES) {
    problems.push('REDIS_CLUSTER_NODES: set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a cluster), not both');
  }
  return problems;
}

/**
 * OA needs AppID and Token; the AppSecret too unless the mode is passive (no API call is made then). Any OA
 * variable set without the required ones is a partly configured channel. The EncodingAESKey stays optional
 * (plaintext mode), so it only counts as a sign that the channel was meant to be on.
 */
function mpCrossChecks(e: Record<string, string | undefined>): string[] {
  const set = MP_VARS.filter((n) => e[n] !== undefined);
  if (set.length === 0) return [];
  const required: string[] = ['WECHAT_MP_APP_ID', 'WECHAT_MP_TOKEN'];
  if ((e.WECHAT_MP_REPLY_MODE?.trim().toLowerCase() ?? 'active') !== 'passive') required.push('WECHAT_MP_APP_SECRET');
  const missing = required.filter((n) => e[n] === undefined);
  if (missing.length === 0) return [];
  const why = missing.includes('WECHAT_MP_APP_SECRET') ? ' (the AppSecret is needed unless WECHAT_MP_REPLY_MODE=passive)' : '';
  return [`Official Account channel is partly configured: missing ${missing.join(', ')}${why}`];
}

function toMpConfig(e: Env): MpConfig | null {
  if (!e.WECHAT_MP_APP_ID || !e.WECHAT_MP_TOKEN) return null;
  return {
    appId: e.WECHAT_MP_APP_ID,
    appSecret: e.WECHAT_MP_APP_SECRET ?? null,
    token: e.WECHAT_MP_TOKEN,
    encodingAesKey: e.WECHAT_MP_ENCODING_AES_KEY ?? null,
    apiBaseUrl: e.WECHAT_MP_API_BASE_URL,
    replyMode: e.WECHAT_MP_REPLY_MODE,
    autoHoldMs: e.WECHAT_MP_AUTO_HOLD_MS,
    passiveHoldMs: e.WECHAT_MP_PASSIVE_HOLD_MS,
    passiveLastMs: e.WECHAT_MP_PASSIVE_LAST_MS,
    clickReplies: e.WECHAT_MP_CLICK_REPLIES ?? {},
  };
}

function toConfig(e: Env): Config {
  const kf: KfConfig | null =
    e.WECOM_CORP_ID && e.WECOM_KF_SECRET && e.WECOM_TOKEN && e.WECOM_ENCODING_AES_KEY
      ? {
          corpId: e.WECOM_CORP_ID,
          kfSecret: e.WECOM_KF_SECRET,
          token: e.WECOM_TOKEN,
          encodingAesKey: e.WECOM_ENCODING_AES_KEY,
          apiBaseUrl: e.WECOM_API_BASE_URL,
          coldStartMaxAgeS: e.KF_COLD_START_MAX_AGE_S,
          maxMessageAgeS: e.KF_MAX_MESSAGE_AGE_S,
        }
      : null;
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    role: e.ROLE,
    kf,
    mp: toMpConfig(e),
    bots: [],
    botWsUrl: e.WECOM_BOT_WS_URL,
    wechatApiProxy: e.WECHAT_API_PROXY ?? null,
    llm: {
      provider: e.LLM_PROVIDER,
      systemPrompt: e.LLM_SYSTEM_PROMPT ?? null,
      timeoutMs: e.LLM_TIMEOUT_MS,
      openai: {
        baseUrl: e.OPENAI_BASE_URL,
        apiKey: e.OPENAI_API_KEY ?? null,
        model: e.OPENAI_MODEL,
        vision: e.OPENAI_VISION,
      },
    },
    replies: {
      onTimeout: e.REPLY_ON_TIMEOUT,
      onError: e.REPLY_ON_ERROR,
      onReset: e.REPLY_ON_RESET,
      unsupported: e.REPLY_UNSUPPORTED,
      stillThinking: e.REPLY_STILL_THINKING,
      rateLimited: e.REPLY_ON_RATE_LIMIT,
      onHandoff: e.REPLY_ON_HANDOFF,
      welcome: e.WELCOME_MESSAGE ?? null,
    },
    keywords: { reset: e.RESET_KEYWORDS, continue: e.CONTINUE_KEYWORDS, handoff: e.HANDOFF_KEYWORDS },
    handoff: { serviceState: e.HANDOFF_SERVICE_STATE === '3' ? 3 : 2, servicerUserid: e.HANDOFF_SERVICER_USERID ?? null },
    media: {
      maxBytes: e.MEDIA_MAX_BYTES,
      allowHosts: e.FETCH_ALLOW_HOSTS ?? '',
      answerImageAllowHosts: e.ANSWER_IMAGE_ALLOW_HOSTS ?? '',
      fileMaxBytes: e.FILE_MAX_BYTES,
    },
    agents: [],
    routes: {},
    rateLimitPerMin: e.RATE_LIMIT_PER_CUSTOMER_PER_MIN,
    maxBodyBytes: e.MAX_BODY_BYTES,
    callbackMaxSkewS: e.CALLBACK_MAX_SKEW_S,
    redisUrl: e.REDIS_URL ?? null,
    redisCluster: e.REDIS_CLUSTER_NODES
      ? { nodes: e.REDIS_CLUSTER_NODES.map(parseHostPort), password: e.REDIS_PASSWORD ?? null }
      : null,
    queueShards: e.QUEUE_SHARDS ?? (e.REDIS_CLUSTER_NODES ? DEFAULT_CLUSTER_SHARDS : 1),
    metricsToken: e.METRICS_TOKEN ?? null,
    adminToken: e.ADMIN_TOKEN ?? null,
    openaiCompatKeys: e.OPENAI_COMPAT_API_KEYS ?? [],
    data: {
      mysqlUrl: e.MYSQL_URL ?? null,
      memoryLimit: e.MESSAGE_LOG_MEMORY_LIMIT,
      logContent: e.LOG_MESSAGE_CONTENT,
      retentionDays: e.MESSAGE_RETENTION_DAYS,
    },
  };
}

/** Every variable the configuration reads, in schema order (docs/configuration.md lists exactly these). */
export const ENV_NAMES: readonly string[] = Object.keys(schema.shape);

/**
 * What a variable means when it is unset, as the schema computes it (numbers, booleans and lists parsed).
 * @returns the default, or undefined when the variable has none (its feature is off or its value required)
 * @throws when `name` is not a variable the configuration reads
 */
export function defaultOf(name: string): unknown {
  const field = (schema.shape as Record<string, z.ZodType>)[name];
  if (!field) throw new Error(`${name} is not a configuration variable`);
  const parsed = field.safeParse(undefined);
  return parsed.success ? parsed.data : undefined;
}
