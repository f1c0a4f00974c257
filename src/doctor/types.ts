/**
 * One line of `npm run doctor`: a check of the configuration against the real world (a token endpoint, an agent,
 * Redis, MySQL, the clock, a smart bot's long connection). Plain data, so the console can show the same results.
 */
export interface DoctorResult {
  /** what was checked, e.g. `kf token (gettoken)`, `agent default (openai)`, `Redis maxmemory-policy` */
  name: string;
  /** false: this will break customers' answers (the command exits 1) */
  ok: boolean;
  /** what was found (never a secret: tokens, keys and URL passwords are removed) */
  detail: string;
  /** what to do about it (failures and warnings) */
  fix?: string;
  /** ok, but worth attention (e.g. a clock 90 s off): shown as `!`, does not fail the command */
  warning?: boolean;
}

/** Knobs of {@link import('./index.js').runDoctor}; every one is optional. */
export interface DoctorOptions {
  /** the local clock, epoch ms (tests skew it); default Date.now */
  now?: () => number;
  /** extra trust for https WeCom/WeChat API origins (tests: a self-signed certificate) */
  tls?: { ca?: string | Buffer };
  /** per-request timeout of the WeCom/WeChat token calls, ms; default 10,000 */
  apiTimeoutMs?: number;
  /** each agent's probe deadline, ms; default the agent's own (LLM_TIMEOUT_MS or its `timeoutMs`) */
  agentTimeoutMs?: number;
  /**
   * false: skip subscribing the long-connection bots. The subscribe evicts a running server's connection for that
   * bot (WeCom keeps one per bot), which then rests a minute before it reconnects. Default true.
   */
  botConnect?: boolean;
  /** how long a bot's connect + subscribe may take, ms; default 5,000 */
  botTimeoutMs?: number;
}

/** A reading of another clock: `remoteMs` was that clock when ours read `localMs`. */
export interface ClockSample {
  /** e.g. `WeCom API Date header`, `Redis TIME` */
  source: string;
  remoteMs: number;
  localMs: number;
  /** how far off the reading may be by itself, ms (a Date header has 1 s resolution) */
  resolutionMs: number;
}

export const pass = (name: string, detail: string): DoctorResult => ({ name, ok: true, detail });
export const fail = (name: string, detail: string, fix: string): DoctorResult => ({ name, ok: false, detail, fix });
export const warn = (name: string, detail: string, fix: string): DoctorResult => ({ name, ok: true, warning: true, detail, fix });

/** An error's message, one line, at most 300 characters. */
export function messageOf(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
