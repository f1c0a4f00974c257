import { readFileSync } from 'node:fs';
import dotenv from 'dotenv';
import { buildApp } from './app.js';
import { loadConfig, type Config } from './config.js';
import { createDeps } from './deps.js';
import { ConfigError } from './errors.js';
import { createLogger } from './logger.js';

/** How often pulls still wanted and jobs whose lease expired are picked up (ms). */
/** Running jobs get this long to finish on SIGTERM; the rest are released for the next process (ms). */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * The process entry: the only place that reads the environment, opens connections, listens and shuts down.
 * `.env` in the working directory fills variables the environment leaves unset, unless the process is started
 * with `--no-env-file` (tests, the demo and the benchmark pass it: their servers get exactly the environment they
 * are given, never a developer's `.env`).
 * Exit codes: 0 after a clean shutdown, 1 on a configuration or start-up error.
 */
async function main(): Promise<void> {
  if (!process.argv.includes('--no-env-file')) dotenv.config({ quiet: true });
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
  const log = createLogger(config.logLevel);
  const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'dev';
  const deps = await createDeps(config, log, { version });
  const app = buildApp(deps.app);
  if (!config.kf && !config.mp) {
    log.warn('no channel is configured: set the WECOM_* variables (kf) and/or WECHAT_MP_* (Official Account)');
  } else if (deps.store.kind === 'memory') {
    log.warn(
      'running on the in-memory store (no REDIS_URL): a restart forgets unanswered messages, tokens and conversations, and replicas share nothing; set REDIS_URL for production',
    );
  }
  if (config.adminToken && config.adminToken.length < 16) {
    log.warn('ADMIN_TOKEN is shorter than 16 characters: it guards customer data; use 32+ random characters (openssl rand -hex 24)');
  }
  if (Object.keys(config.routes).length > 0 && config.agents[0]?.provider === 'echo') {
    log.warn('AGENT_ROUTES is set but the default agent is echo: accounts without a route get their own words back (set LLM_PROVIDER)');
  }

  const sweep = () => deps.sweep().catch((e: unknown) => log.warn({ err: e }, 'sweep failed'));
  // One sweep at a time: a slow Redis must not stack them up.
  let sweeping: Promise<void> | null = null;
  const timer = setInterval(() => {
    sweeping ??= sweep().finally(() => (sweeping = null));
  }, deps.sweepIntervalMs);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    clearInterval(timer);
    const force = setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS + 10_000);
    force.unref();
    try {
      await app.close();
      await deps.close(SHUTDOWN_GRACE_MS);
      log.info('stopped');
      process.exit(0);
    } catch (e) {
      log.error({ err: e }, 'unclean shutdown');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  await app.listen({ port: config.port, host: config.host });
  log.info(
    { version, port: config.port, role: config.role, store: deps.store.kind, kf: config.kf !== null, mp: config.mp !== null, llm: config.llm.provider },
    'wechat-ai-bridge listening',
  );
  // Work left by a previous process (crash or restart) starts now, not after the first interval.
  void sweep();
}

main().catch((e: unknown) => {
  console.error('start-up failed:', e instanceof Error ? e.message : e);
  process.exit(1);
});
