/**
 * A refusal with an HTTP status and a short plain-text reason (no stack, no secret). `reason` is a stable token
 * for logs and metrics, e.g. `bad_signature`, `stale_timestamp`, `doctype`.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 413 | 503,
    readonly reason: string,
    message: string,
    /** for the operator's log only (never sent): what to change when the refusal points at a misconfiguration */
    readonly hint?: string,
  ) {
    super(message);
  }
}
