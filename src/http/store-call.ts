import { HttpError } from './http-error.js';

/**
 * Runs a callback's store work; a store failure (Redis down or not answering) becomes a 503, which the platforms
 * retry, and is logged once with what could not be done. HttpErrors (a refused replay) pass through as they are.
 * @param what for the log line, e.g. `record the callback`
 * @throws HttpError 503 `store_unavailable`, or the HttpError `fn` threw
 */
export async function storeCall<T>(log: { error(obj: object, msg: string): void }, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof HttpError) throw e;
    log.error({ err: e }, `cannot ${what} (store unavailable)`);
    throw new HttpError(503, 'store_unavailable', 'temporarily unavailable');
  }
}
