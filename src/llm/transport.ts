import type { Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { LlmError } from '../errors.js';
import type { ImageInput } from './types.js';
import { llmErrorFromHttp, llmErrorFromTransport } from './http-errors.js';
import { readCapped } from './stream.js';

/** A provider's answer to a streaming POST that passed the HTTP status check. */
export interface StreamResponse {
  /** the HTTP status, < 400 (a 3xx only when redirects are not followed) */
  status: number;
  body: Readable;
  /** lower-cased content type ('' when absent) */
  contentType: string;
  headers: Record<string, unknown>;
}

/**
 * The one streaming transport of every adapter (docs/providers.md "Transport": axios, `responseType: 'stream'`,
 * one AbortSignal). POSTs JSON; an HTTP error status is read (capped) and translated by `translate` (default:
 * `llmErrorFromHttp`, honouring `retry-after`); a transport failure becomes a retryable `upstream` LlmError,
 * an abort an `aborted` one. The caller reads `body` (SSE or NDJSON) with its own idle timer.
 * @param path appended to the instance's baseURL, e.g. `/chat-messages`; '' posts to the baseURL itself
 * @param maxRedirects given: how many redirects axios follows (0: a 3xx comes back as the answer); else the instance's (the agents': none, so a 3xx is an error naming where it pointed)
 * @throws LlmError
 */
export async function postStream(
  http: AxiosInstance,
  provider: string,
  req: {
    path: string;
    body: unknown;
    headers?: Record<string, string>;
    params?: Record<string, string>;
    signal: AbortSignal;
    maxRedirects?: number;
    translate?: (status: number, bodyText: string, retryAfter: string | undefined) => LlmError;
  },
): Promise<StreamResponse> {
  let res;
  try {
    res = await http.post<Readable>(req.path, req.body, {
      responseType: 'stream',
      signal: req.signal,
      params: req.params,
      ...(req.maxRedirects === undefined ? {} : { maxRedirects: req.maxRedirects }),
      // The deadline is the caller's signal; axios' own timeout would cut a long, healthy stream.
      timeout: 0,
      validateStatus: () => true,
      headers: { 'content-type': 'application/json', ...req.headers },
    });
  } catch (e) {
    throw llmErrorFromTransport(provider, e, req.signal);
  }
  if (res.status >= 300 && res.status < 400 && req.maxRedirects === undefined) {
    res.data.destroy();
    throw redirectError(provider, res.status, res.headers.location);
  }
  if (res.status >= 400) {
    const retryAfter = res.headers['retry-after'] as string | undefined;
    const text = await readCapped(res.data);
    throw req.translate ? req.translate(res.status, text, retryAfter) : llmErrorFromHttp(provider, res.status, text, retryAfter);
  }
  return { status: res.status, body: res.data, contentType: String(res.headers['content-type'] ?? '').toLowerCase(), headers: res.headers };
}

/**
 * A multipart/form-data POST (file uploads: Dify `POST /files/upload`, Coze `POST /v1/files/upload`) through the
 * same axios instance as the chat call. `form` is Node's global FormData: axios 1.x streams it with its own
 * boundary and sets the content type itself, so none is given here. The answer (JSON, small) is read capped at
 * 64 KB; aborting `signal` stops the read. Error statuses go through `translate` (default `llmErrorFromHttp`:
 * 400/413/415 `bad_request`, not retryable; 401/403 `auth`; 429 `rate_limit`; 5xx `upstream`, retryable).
 * Nothing of the form (image bytes) ever reaches an error message.
 * @param path appended to the instance's baseURL, e.g. `/files/upload`
 * @returns the answer parsed as a JSON object
 * @throws LlmError: the translated HTTP error; `upstream` (retryable) on a transport failure; `aborted`; `protocol`
 *   when a 2xx answer is not a JSON object
 */
export async function postForm(
  http: AxiosInstance,
  provider: string,
  req: {
    path: string;
    form: FormData;
    headers?: Record<string, string>;
    signal: AbortSignal;
    translate?: (status: number, bodyText: string, retryAfter: string | undefined) => LlmError;
  },
): Promise<Record<string, unknown>> {
  let res;
  try {
    res = await http.post<Readable>(req.path, req.form, {
      responseType: 'stream',
      signal: req.signal,
      timeout: 0,
      validateStatus: () => true,
      headers: { accept: 'application/json', ...req.headers },
    });
  } catch (e) {
    throw llmErrorFromTransport(provider, e, req.signal);
  }
  // readCapped has no signal of its own: an abort destroys the body, which ends the read.
  const body = res.data;
  const onAbort = () => body.destroy();
  req.signal.addEventListener('abort', onAbort, { once: true });
  let text: string;
  try {
    text = await readCapped(body);
  } finally {
    req.signal.removeEventListener('abort', onAbort);
  }
  if (req.signal.aborted) throw new LlmError('aborted', `${provider}: request aborted`);
  if (res.status >= 300 && res.status < 400) throw redirectError(provider, res.status, res.headers.location);
  if (res.status >= 400) {
    const retryAfter = res.headers['retry-after'] as string | undefined;
    throw req.translate ? req.translate(res.status, text, retryAfter) : llmErrorFromHttp(provider, res.status, text, retryAfter);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new LlmError('protocol', `${provider}: HTTP ${res.status} answer is not a JSON object`, { status: res.status });
}

/**
 * One image as a multipart file part: a Blob typed with the image's (sniffed) MIME type, to be appended with its
 * file name (`form.append(field, imageBlob(img), img.name)`); providers check the type and extension.
 */
export function imageBlob(img: ImageInput): Blob {
  return new Blob([img.data], { type: img.mime });
}

/** Parses one JSON frame of a stream. @throws LlmError `protocol` (carrying the text so far) when it is not an object */
export function parseFrame<T>(provider: string, data: string, partialText: string): T {
  try {
    const v: unknown = JSON.parse(data);
    if (v && typeof v === 'object') return v as T;
  } catch {
    // fall through
  }
  throw new LlmError('protocol', `${provider}: a stream frame is not JSON`, { partialText });
}

/** `{prompt, completion, total}` token counts → Usage (null when the provider gave none). */
export function usageOf(input: unknown, output: unknown, total?: unknown): { inputTokens: number | null; outputTokens: number | null; totalTokens: number | null } {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const i = n(input);
  const o = n(output);
  return { inputTokens: i, outputTokens: o, totalTokens: n(total) ?? (i !== null && o !== null ? i + o : null) };
}

/** A response header as a string (first value), or undefined. */
export function headerOf(headers: Record<string, unknown>, name: string): string | undefined {
  const v = headers[name];
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' && first ? first.slice(0, 128) : undefined;
}

/**
 * The agents' clients follow no redirect (create-adapter.ts): a 3xx means the configured base URL is not the API's
 * own address. Not retryable; the message names where it pointed (origin only: a path or query may carry keys).
 */
function redirectError(provider: string, status: number, location: unknown): LlmError {
  let to: string;
  try {
    to = typeof location === 'string' ? ` to ${new URL(location).origin}` : '';
  } catch {
    to = '';
  }
  return new LlmError('bad_request', `${provider}: HTTP ${status}, redirected${to}: set the base URL to the API's own address (redirects are not followed)`, { status });
}
