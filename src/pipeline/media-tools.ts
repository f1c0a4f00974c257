import type { ImageInput } from '../llm/types.js';
import type { MediaFile } from '../wechat-api/http.js';

/**
 * Everything the channels download on a customer's behalf, behind one port so channel code stays free of network
 * policy and tests can see the refusals: the SSRF policy (FETCH_ALLOW_HOSTS for customers' links,
 * ANSWER_IMAGE_ALLOW_HOSTS for images an answer links), size caps (MEDIA_MAX_BYTES, FILE_MAX_BYTES), time caps and
 * the extraction worker pool live in the implementation (`media/tools.ts`). No method throws for a refused or
 * failed fetch or extraction: it logs the reason and returns null, and the caller answers without the content.
 * Methods taking a signal rethrow its reason when it fired (the job was cancelled).
 */
export interface MediaTools {
  /** MEDIA_MAX_BYTES: the cap for `media/get` downloads of images (bytes) */
  readonly maxBytes: number;
  /** FILE_MAX_BYTES: the cap for `media/get` downloads of files handed to `fileText` (bytes) */
  readonly fileMaxBytes: number;
  /** A downloaded file as an image the LLM can take (mime sniffed from the bytes), or null when it is not one. */
  asImage(file: MediaFile): ImageInput | null;
  /**
   * The text of a customer's PDF or plain-text file (capped), extracted in a worker thread; null for other types,
   * an unreadable file, one over `fileMaxBytes`, or an extraction that was killed (time or memory).
   */
  fileText(file: MediaFile, signal?: AbortSignal): Promise<{ kind: 'pdf' | 'text'; text: string } | null>;
  /** Title and main text of a customer's link (http(s), public addresses only unless allowed), or null. */
  readPage(url: string, signal: AbortSignal): Promise<{ title: string | null; text: string } | null>;
  /** Downloads an image an answer links to (ANSWER_IMAGE_ALLOW_HOSTS, MEDIA_MAX_BYTES), or null. */
  fetchImage(url: string, signal: AbortSignal): Promise<ImageInput | null>;
  /** Stops the extraction threads (shutdown); later extractions return null. Idempotent. */
  close(): Promise<void>;
}
