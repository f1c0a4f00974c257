import pRetry from 'p-retry';
import type { Logger } from 'pino';
import { WechatApiError } from '../../errors.js';
import type { ApiClient } from '../../wechat-api/api-client.js';

/**
 * Refusals that end an OA reply for good (docs/protocols.md OA §7): 45015 outside the window or unfollowed,
 * 45047 the customer's message quota is spent, 48001 the account has no customer-service API. Retrying cannot
 * help; the remaining parts are dropped.
 */
export const MP_FINAL_ERRCODES: ReadonlySet<number> = new Set([45015, 45047, 48001]);

/**
 * Sends one text part with `message/custom/send` (`{touser, msgtype: "text", text: {content}}`, content ≤ 2000
 * UTF-8 bytes as split by the pipeline). Transient failures (-1, 45009, 45011, 45033, 5xx, network) are retried
 * a few times with backoff. The API has no idempotency key: a request that timed out after WeChat accepted it
 * is sent again (a rare duplicate is preferred to a silent customer).
 * @throws WechatApiError for refusals (45015, 45047, 48001, 45002, 40003 …) and transient failures that outlasted
 *   the retries
 */
export async function sendCustomText(
  api: ApiClient,
  msg: { touser: string; content: string },
  signal: AbortSignal,
): Promise<void> {
  await postCustom(api, { touser: msg.touser, msgtype: 'text', text: { content: msg.content } }, signal);
}

/** One `message/custom/send` call, transient failures retried a few times with backoff (same rule for every type). */
async function postCustom(api: ApiClient, body: Record<string, unknown>, signal: AbortSignal): Promise<void> {
  await pRetry(() => api.post('mp/custom_send', '/cgi-bin/message/custom/send', body, signal), {
    retries: 3,
    minTimeout: 300,
    factor: 3,
    signal,
    shouldRetry: ({ error }) => error instanceof WechatApiError && error.retryable,
  });
}

/**
 * Sends one image with `message/custom/send` (`{touser, msgtype: "image", image: {media_id}}`, a temporary media
 * uploaded beforehand), retried like {@link sendCustomText}.
 * @throws WechatApiError as sendCustomText
 */
export async function sendCustomImage(api: ApiClient, msg: { touser: string; media_id: string }, signal: AbortSignal): Promise<void> {
  await postCustom(api, { touser: msg.touser, msgtype: 'image', image: { media_id: msg.media_id } }, signal);
}

/** "Typing…" shown to one customer while the LLM works. */
export interface Typing {
  /** stops re-sending (a sent message clears the indicator on WeChat's side) */
  stop(): void;
}

/** The indicator lasts 15 s; re-sending while it shows is refused (45081). */
const TYPING_REFRESH_MS = 15_000;
/** WeChat accepts typing only within 30 s of the customer's last interaction (45080): two sends cover it. */
const TYPING_MAX_SENDS = 2;

/**
 * Starts `message/custom/typing` `{touser, command: "Typing"}` now and once more after 15 s
 * (docs/protocols.md OA §6). Best effort: failures (45080, 45081, 48001, network) are logged at debug and never
 * fail the reply.
 */
export function startTyping(api: ApiClient, openid: string, log: Logger): Typing {
  let sends = 0;
  let timer: NodeJS.Timeout | null = null;
  const ctrl = new AbortController();
  const send = () => {
    sends += 1;
    api
      .post('mp/typing', '/cgi-bin/message/custom/typing', { touser: openid, command: 'Typing' }, ctrl.signal)
      .catch((e: unknown) => log.debug({ errcode: e instanceof WechatApiError ? e.errcode : null }, 'typing indicator not shown'));
    if (sends < TYPING_MAX_SENDS) timer = setTimeout(send, TYPING_REFRESH_MS);
  };
  send();
  return {
    stop: () => {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
