import type { Logger as SdkLogger } from '@wecom/aibot-node-sdk';
import type { Logger } from 'pino';

/** Longest SDK log text kept (it logs whole frames on some paths). */
const MAX_TEXT = 500;

/**
 * Routes the SDK's logger (printf-like `(message, ...args)` strings; its default writes every line to the console)
 * onto a pino child, one level quieter than the SDK chose:
 * - SDK `debug` → `trace`: it prints every inbound frame's body there (customers' messages);
 * - SDK `info` → `debug`: connect/auth/upload chatter on every (re)connection;
 * - SDK `warn` and `error` → `warn`: socket errors on every retry, refused replies (callers see those as rejections;
 *   the caller logs what matters at `error`, e.g. refused credentials).
 * The SDK never logs the secret in 1.0.7 (the subscribe frame is sent, not logged); every text is still scrubbed of
 * it, and cut to 500 characters.
 * @param log a pino child (lines get `sdk: true`)
 * @param secret the bot's long-connection secret, removed from any text
 */
export function sdkLogger(log: Logger, secret: string): SdkLogger {
  const text = (message: string, args: unknown[]): string => {
    let s = [message, ...args.map(show)].join(' ');
    if (secret) s = s.split(secret).join('[redacted]');
    return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
  };
  return {
    debug: (m: string, ...a: unknown[]) => log.isLevelEnabled('trace') && log.trace({ sdk: true }, text(m, a)),
    info: (m: string, ...a: unknown[]) => log.isLevelEnabled('debug') && log.debug({ sdk: true }, text(m, a)),
    warn: (m: string, ...a: unknown[]) => log.warn({ sdk: true }, text(m, a)),
    error: (m: string, ...a: unknown[]) => log.warn({ sdk: true }, text(m, a)),
  };
}

function show(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Error) return v.message;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
