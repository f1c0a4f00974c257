import type { Logger } from 'pino';
import { WechatApiError } from '../errors.js';
import type { ImageRef } from '../format/image-marker.js';
import type { ApiClient } from '../wechat-api/api-client.js';
import type { MediaTools } from './media-tools.js';

/**
 * Gets an image an answer links to (`![alt](url)`) onto the platform: downloaded through `media` (SSRF-safe,
 * MEDIA_MAX_BYTES) and uploaded with `media/upload?type=image` (a temporary media, 3 days; kf and OA share the call).
 * @returns the media_id, or null when the image cannot be had or the upload is refused (the caller then sends
 *   `alt (url)` as text in its place)
 * @throws WechatApiError when the upload failed transiently (the job retries); the signal's reason when aborted
 */
export async function uploadAnswerImage(
  api: ApiClient,
  media: MediaTools,
  image: ImageRef,
  signal: AbortSignal,
  log: Logger,
): Promise<string | null> {
  const file = await media.fetchImage(image.url, signal);
  if (!file) return null;
  try {
    return await api.uploadMedia('image', file, signal);
  } catch (e) {
    if (signal.aborted || !(e instanceof WechatApiError) || e.retryable) throw e;
    log.warn({ errcode: e.errcode, status: e.status }, 'media/upload refused the answer image; sending it as a link');
    return null;
  }
}
