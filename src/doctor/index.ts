/**
 * `npm run doctor`: the configuration checked against the real world, one line per check. The checks are plain
 * functions returning {@link DoctorResult}s (one file per family), so the operator console can run the same ones.
 */
import type { Config } from '../config.js';
import { maskCredentials } from '../errors.js';
import { checkAgent } from './agents.js';
import { checkBot } from './bots.js';
import { checkClock } from './clock.js';
import { checkMysql } from './mysql.js';
import { checkRedis, checkRedisCluster } from './redis.js';
import { warn, type ClockSample, type DoctorOptions, type DoctorResult } from './types.js';
import { checkKfToken, checkMpToken } from './wechat.js';

export { checkConfig } from './config-check.js';
export { checkAgent } from './agents.js';
export { checkBot } from './bots.js';
export { checkClock } from './clock.js';
export { checkMysql } from './mysql.js';
export { checkRedis, checkRedisCluster } from './redis.js';
export { checkKfToken, checkMpToken } from './wechat.js';
export type { ClockSample, DoctorOptions, DoctorResult } from './types.js';

/**
 * Runs every check that applies to `config`, concurrently: each channel's token (through WECHAT_API_PROXY when
 * set), each agent's one-line probe, Redis, MySQL, the clock, the smart bots. Never throws: a check that breaks is
 * a failed line. No secret appears in any line.
 * @returns the lines in a fixed order: kf, OA, agents, Redis, MySQL, clock, bots
 */
export async function runDoctor(config: Config, options: DoctorOptions = {}): Promise<DoctorResult[]> {
  const now = options.now ?? Date.now;
  const samples: ClockSample[] = [];
  const token = { now, timeoutMs: options.apiTimeoutMs ?? 10_000, onClock: (s: ClockSample) => samples.push(s), ...(options.tls ? { tls: options.tls } : {}) };
  const guard = async (name: string, run: () => Promise<DoctorResult | DoctorResult[] | null>): Promise<DoctorResult[]> => {
    try {
      const r = await run();
      return r === null ? [] : Array.isArray(r) ? r : [r];
    } catch (e) {
      return [{ name, ok: false, detail: `the check itself failed: ${e instanceof Error ? e.message : String(e)}`, fix: 'report this with the line above' }];
    }
  };
  const groups = await Promise.all([
    guard('kf token', () => checkKfToken(config, token)),
    guard('OA token', () => checkMpToken(config, token)),
    ...config.agents.map((a) => guard(`agent ${a.name}`, () => checkAgent(a, options.agentTimeoutMs))),
    guard('Redis', async () =>
      config.redisCluster
        ? checkRedisCluster(config.redisCluster, { now, onClock: (s) => samples.push(s), queueShards: config.queueShards })
        : config.redisUrl
          ? checkRedis(config.redisUrl, { now, onClock: (s) => samples.push(s), queueShards: config.queueShards })
          : withoutRedis(config),
    ),
    guard('MySQL', async () => (config.data.mysqlUrl ? checkMysql(config.data.mysqlUrl) : null)),
    ...config.bots.map((b) =>
      guard(`smart bot ${b.botId}`, () => checkBot(b, { wsUrl: config.botWsUrl, connect: options.botConnect ?? true, ...(options.botTimeoutMs ? { timeoutMs: options.botTimeoutMs } : {}) })),
    ),
  ]);
  const bots = groups.splice(groups.length - config.bots.length, config.bots.length);
  const results = [...groups.flat(), ...(await guard('clock', async () => checkClock(samples, config.callbackMaxSkewS))), ...bots.flat()];
  const secrets = secretsOf(config);
  return results.map((r) => ({ ...r, detail: redact(r.detail, secrets), ...(r.fix !== undefined ? { fix: redact(r.fix, secrets) } : {}) }));
}

/** Without REDIS_URL or REDIS_CLUSTER_NODES: a warning when a channel is on (a restart forgets unanswered messages), else nothing. */
function withoutRedis(c: Config): DoctorResult | null {
  if (!c.kf && !c.mp && c.bots.length === 0) return null;
  return warn(
    'Redis',
    'not configured: jobs, tokens and conversations live in this process (a restart forgets unanswered messages; replicas share nothing)',
    'set REDIS_URL (or REDIS_CLUSTER_NODES) for production',
  );
}

/** Whether every check passed (warnings pass). */
export function allPassed(results: DoctorResult[]): boolean {
  return results.every((r) => r.ok);
}

/** One printed line: `✓ name: detail`, `! name: detail — fix: …` (warning), `✗ name: detail — fix: …`. */
export function formatResult(r: DoctorResult): string {
  const mark = !r.ok ? '✗' : r.warning ? '!' : '✓';
  return `${mark} ${r.name}: ${r.detail}${r.fix && (!r.ok || r.warning) ? ` — fix: ${r.fix}` : ''}`;
}

/** Every secret value of the configuration (longest first, so a key that contains another is removed whole). */
function secretsOf(c: Config): string[] {
  const values: Array<string | null | undefined> = [
    c.kf?.kfSecret,
    c.kf?.token,
    c.kf?.encodingAesKey,
    c.mp?.appSecret,
    c.mp?.token,
    c.mp?.encodingAesKey,
    c.adminToken,
    c.metricsToken,
    ...c.openaiCompatKeys,
    ...c.agents.flatMap((a) => ('apiKey' in a ? [a.apiKey] : 'apiToken' in a ? [a.apiToken] : 'token' in a ? [a.token] : [])),
    ...c.bots.flatMap((b) => (b.mode === 'websocket' ? [b.secret] : [b.token, b.encodingAesKey])),
    c.redisCluster?.password,
    ...[c.redisUrl, c.data.mysqlUrl, c.wechatApiProxy].map(passwordOf),
  ];
  return [...new Set(values.filter((v): v is string => typeof v === 'string' && v.length >= 4))].sort((a, b) => b.length - a.length);
}

function passwordOf(url: string | null): string | null {
  if (!url) return null;
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : null;
  } catch {
    return null;
  }
}

function redact(text: string, secrets: string[]): string {
  let out = maskCredentials(text);
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}
