import dotenv from 'dotenv';
import { checkConfig } from './config-check.js';
import { allPassed, formatResult, runDoctor } from './index.js';

/**
 * The doctor command: loads the configuration exactly as the server does (`.env` in the working directory for what
 * the environment leaves unset, unless `--no-env-file`; then the same schema), runs every check and prints one
 * line each. `--skip-bot-connect`: long-connection bots are not subscribed (the subscribe evicts a running server's
 * connection of the same bot for a minute).
 * @param print one output line (default: stdout)
 * @returns the exit code: 0 when every check passed (warnings pass), 1 otherwise
 */
export async function doctorCli(args: string[], env: NodeJS.ProcessEnv = process.env, print: (line: string) => void = (line) => void process.stdout.write(`${line}\n`)): Promise<number> {
  if (!args.includes('--no-env-file')) dotenv.config({ quiet: true, processEnv: env });
  const { config, results: configLines } = checkConfig(env);
  for (const r of configLines) print(formatResult(r));
  if (!config) return 1;
  const results = await runDoctor(config, { botConnect: !args.includes('--skip-bot-connect') });
  for (const r of results) print(formatResult(r));
  const total = results.length + 1;
  const failed = results.filter((r) => !r.ok).length;
  const warned = results.filter((r) => r.ok && r.warning).length;
  print(
    failed === 0
      ? `\nAll ${total} checks passed${warned ? ` (${warned} with a warning)` : ''}.`
      : `\n${failed} of ${total} checks failed: fix them before customers arrive.`,
  );
  return allPassed(results) ? 0 : 1;
}
