import type { ImageInput } from '../llm/types.js';
import type { MediaFile } from '../wechat-api/http.js';

/**
 * Everything the channels download on a customer's behalf, behind one port so channel code stays free of network
 * policy and tests can see the refusals: the SSRF policy (FETCH_ALLOW_HOSTS), size caps (MEDIA_MAX_BYTES) and
 * time caps live in the implementation (`media/tools.ts`). No method throws for a refused or failed fetch: it
 * logs and returns null, and the caller answers without the content.
 */
export interface MediaTools {
  /** MEDIA_MAX_BYTES: the cap for `media/get` downloads (bytes) */
  readonly maxBytes: number;
  /** A downloaded file as an image the LLM can take (mime sniffed from the bytes), or null when it is not one. */
  asImage(file: MediaFile): ImageInput | null;
  /** The text of a customer's PDF or plain-text file (capped), or null for other types or an unreadable file. */
  fileText(file: MediaFile): Promise<{ kind: 'pdf' | 'text'; text: string } | null>;
  /** Title and main text of a customer's link (http(s), public addresses only unless allowed), or null. */
  readPage(url: string, signal: AbortSignal): Promise<{ title: string | null; text: string } | null>;
  /** Downloads an image an answer links to (same policy and caps), or null. */
  fetchImage(url: string, signal: AbortSignal): Promise<ImageInput | null>;
}
