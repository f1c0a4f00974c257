import { loadConfig, type Config } from '../config.js';
import { ConfigError, maskCredentials } from '../errors.js';
import { fail, messageOf, pass, type DoctorResult } from './types.js';

/**
 * Loads the configuration exactly as the server does (`loadConfig` over the environment the caller prepared, i.e.
 * after dotenv) and reports it: one line when it loads, one line per problem (with its fix) when it does not.
 * @returns the configuration (null when it does not load) and the lines
 */
export function checkConfig(env: NodeJS.ProcessEnv): { config: Config | null; results: DoctorResult[] } {
  try {
    const config = loadConfig(env);
    return { config, results: [pass('configuration', summary(config))] };
  } catch (e) {
    if (!(e instanceof ConfigError)) return { config: null, results: [fail('configuration', messageOf(e), 'see docs/configuration.md')] };
    return { config: null, results: e.problems.map((p) => fail('configuration', p, fixFor(p))) };
  }
}

function summary(c: Config): string {
  const channels = [c.kf ? 'kf' : null, c.mp ? `mp (${c.mp.replyMode})` : null, c.bots.length ? `${c.bots.length} smart bot(s)` : null].filter(Boolean);
  const parts = [
    `channels: ${channels.length ? channels.join(', ') : 'none'}`,
    `agents: ${c.agents.map((a) => `${a.name} (${a.provider})`).join(', ')}`,
    `store: ${c.redisCluster ? `Redis Cluster (${c.queueShards} queue shards)` : c.redisUrl ? 'Redis' : 'memory'}`,
    `log: ${c.data.mysqlUrl ? 'MySQL' : c.redisUrl || c.redisCluster ? 'Redis' : 'memory'}`,
  ];
  if (c.wechatApiProxy) parts.push(`WeChat API proxy: ${maskCredentials(c.wechatApiProxy)}`);
  return `loads (${parts.join('; ')})`;
}

/** The fix for one of loadConfig's problem lines (`NAME: what is wrong`, or a cross-variable sentence). */
function fixFor(problem: string): string {
  const required = /^([A-Z][A-Z0-9_]*): required when (LLM_PROVIDER=\w+)/.exec(problem);
  if (required) return `set ${required[1]} (${required[2]} needs it)`;
  const partly = /partly configured: missing ([A-Z0-9_, ]+)/.exec(problem);
  if (partly) return `set ${partly[1]!.trim()}, or unset the channel's other variables to leave it off`;
  if (/^ROLE: /.test(problem)) return 'set REDIS_URL (or REDIS_CLUSTER_NODES), or ROLE=all';
  if (/^HANDOFF_SERVICE_STATE=3/.test(problem)) return 'set HANDOFF_SERVICER_USERID, or HANDOFF_SERVICE_STATE=2';
  const name = /^([A-Z][A-Z0-9_]*)(?:[.:])/.exec(problem)?.[1];
  if (name) return `correct ${name} in .env or the environment (docs/configuration.md gives its format)`;
  return 'see docs/configuration.md';
}
