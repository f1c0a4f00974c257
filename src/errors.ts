/**
 * Error classes with stable codes. Callers branch on fields (`code`, `errcode`, `retryable`), never on message
 * text. Upstream errors are translated once, at the edge that talks to the upstream.
 */

/**
 * A WXBizMsgCrypt failure. `code` is the reference library's return code (WeCom sample code, see
 * docs/protocols.md kf §1.4): -40001 signature mismatch, -40002 parse error, -40004 bad
 * EncodingAESKey, -40005 receiveid mismatch, -40006 encrypt failed, -40007 decrypt failed, -40008 bad plaintext
 * buffer (length/padding), -40010 base64 decode failed.
 */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A WeChat/WeCom API call that did not succeed. `errcode` is the platform's code (0 never appears here); for
 * transport failures (no JSON answer) `errcode` is null and `status` carries the HTTP status when there was one.
 * `retryable` says whether the same call may succeed later (busy, rate limit, network), not whether the token
 * should be refreshed (the client does that itself for 40001/40014/42001).
 */
export class WechatApiError extends Error {
  override readonly name = 'WechatApiError';
  constructor(
    readonly api: string,
    readonly errcode: number | null,
    readonly retryable: boolean,
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

/** What went wrong with an LLM call; see docs/providers.md §6. */
export type LlmErrorKind =
  | 'auth'
  | 'rate_limit'
  | 'bad_request'
  | 'not_found'
  | 'conversation_expired'
  | 'upstream'
  | 'timeout'
  | 'aborted'
  | 'truncated'
  | 'protocol';

/**
 * An LLM adapter failure. `retryable` is only meaningful while nothing has streamed (`partialText` empty);
 * `status` is the HTTP status when the provider answered one; `code` is the provider's own error code.
 */
export class LlmError extends Error {
  override readonly name = 'LlmError';
  constructor(
    readonly kind: LlmErrorKind,
    message: string,
    readonly options: {
      retryable?: boolean;
      status?: number | null;
      code?: string | null;
      partialText?: string;
      retryAfterMs?: number | null;
    } = {},
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.options.retryable ?? false;
  }
  get status(): number | null {
    return this.options.status ?? null;
  }
  get partialText(): string {
    return this.options.partialText ?? '';
  }
}

/** A configuration problem list; thrown by `loadConfig`, printed once by main. Never contains secret values. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/**
 * A backing service named in the configuration that cannot be reached at start (`variable`: REDIS_URL, MYSQL_URL…).
 * The message is one line: the variable, its address with credentials masked, and the reason.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    readonly variable: string,
    address: string,
    reason: string,
  ) {
    super(`${variable} ${maskCredentials(address)} is unreachable: ${reason}`);
  }
}

/** `redis://user:pass@host:6379/0` → `redis://***@host:6379/0`: a URL fit for a log line or a start-up error. */
export function maskCredentials(url: string): string {
  return url.replace(/\/\/[^/@\s]*@/, '//***@');
}
