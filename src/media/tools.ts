import type { Logger } from 'pino';
import type { MediaConfig } from '../config.js';
import type { ImageInput } from '../llm/types.js';
import type { MediaTools } from '../pipeline/media-tools.js';
import type { MediaFile } from '../wechat-api/http.js';
import { parseAllowList } from './address-policy.js';
import { FetchRefusedError, redactUrl } from './fetch-error.js';
import { extractFileText, FileTextError } from './file-text.js';
import { sniffImageType } from './image-type.js';
import { fetchPageSummary } from './page-text.js';
import type { Resolver } from './resolver.js';
import { safeFetch } from './safe-fetch.js';
import type { HttpTransport } from './transport.js';

/** Characters of a customer's file given to the agent (what we spend of its context). */
const FILE_MAX_CHARS = 8_000;
/** An answer's image: WeChat's own upload limits are 2 MB (OA) and 10 MB (kf); a slow host must not hold the reply. */
const ANSWER_IMAGE_TIMEOUT_MS = 10_000;

/**
 * The {@link MediaTools} of a running bridge: SSRF-safe fetches (public addresses only unless FETCH_ALLOW_HOSTS
 * allows a host or range; every redirect re-checked; the connection goes to the address that was checked),
 * MEDIA_MAX_BYTES for downloads, and logs that name the reason and the host, never a query string.
 * @param o.resolver / o.transport injected by tests to prove refusals without DNS
 */
export function createMediaTools(config: MediaConfig, log: Logger, o: { resolver?: Resolver; transport?: HttpTransport } = {}): MediaTools {
  const allowList = parseAllowList(config.allowHosts);
  const fetchOptions = { allowList, ...(o.resolver ? { resolver: o.resolver } : {}), ...(o.transport ? { transport: o.transport } : {}) };
  const refused = (e: unknown, url: string, what: string) => {
    if (e instanceof FetchRefusedError) log.warn({ reason: e.reason, url: redactUrl(url) }, `${what} not fetched`);
    else log.warn({ err: e instanceof Error ? e.message : String(e), url: redactUrl(url) }, `${what} not fetched`);
    return null;
  };

  const asImage = (file: MediaFile | { data: Buffer; filename: string | null }): ImageInput | null => {
    const type = sniffImageType(file.data);
    return type ? { data: file.data, mime: type.mime, name: `${(file.filename ?? 'image').replace(/\.[^.]*$/, '') || 'image'}.${type.ext}` } : null;
  };

  return {
    maxBytes: config.maxBytes,
    asImage,
    fileText: async (file) => {
      try {
        const r = await extractFileText(file.data, { filename: file.filename, contentType: file.contentType, maxChars: FILE_MAX_CHARS });
        return { kind: r.kind, text: r.truncated ? `${r.text}…（文件较长，只读了前一部分）` : r.text };
      } catch (e) {
        if (!(e instanceof FileTextError)) throw e;
        log.info({ reason: e.reason, contentType: file.contentType }, 'file text not extracted');
        return null;
      }
    },
    readPage: async (url, signal) => {
      try {
        const page = await fetchPageSummary(url, { fetchOptions, signal });
        return { title: page.title, text: page.text };
      } catch (e) {
        if (signal.aborted) throw e;
        return refused(e, url, 'linked page');
      }
    },
    fetchImage: async (url, signal) => {
      try {
        const res = await safeFetch(
          url,
          {
            ...fetchOptions,
            maxBytes: config.maxBytes,
            timeoutMs: ANSWER_IMAGE_TIMEOUT_MS,
            // Refused before the body is read; the bytes are sniffed afterwards anyway (servers mislabel images).
            accept: (type) => type === null || type.startsWith('image/') || type === 'application/octet-stream',
          },
          signal,
        );
        const image = asImage({ data: res.body, filename: new URL(res.finalUrl).pathname.split('/').pop() || 'image' });
        if (!image) log.warn({ url: redactUrl(url), contentType: res.contentType }, 'answer image is not an image; sent as a link');
        return image;
      } catch (e) {
        if (signal.aborted) throw e;
        return refused(e, url, 'answer image');
      }
    },
  };
}
