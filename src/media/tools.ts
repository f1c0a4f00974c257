import type { Logger } from 'pino';
import type { MediaConfig } from '../config.js';
import type { ImageInput } from '../llm/types.js';
import type { MediaTools } from '../pipeline/media-tools.js';
import type { MediaFile } from '../wechat-api/http.js';
import { parseAllowList } from './address-policy.js';
import { createExtractPool, type ExtractPool, type ExtractPoolOptions } from './extract-pool.js';
import { ExtractionError } from './extraction-error.js';
import { FetchRefusedError, redactUrl } from './fetch-error.js';
import { FileTextError } from './file-text.js';
import { sniffImageType } from './image-type.js';
import { fetchPageSummary } from './page-text.js';
import type { Resolver } from './resolver.js';
import { safeFetch } from './safe-fetch.js';
import type { HttpTransport } from './transport.js';

/** Characters of a customer's file given to the agent (what we spend of its context). */
const FILE_MAX_CHARS = 8_000;
/** An answer's image: WeChat's own upload limits are 2 MB (OA) and 10 MB (kf); a slow host must not hold the reply. */
const ANSWER_IMAGE_TIMEOUT_MS = 10_000;

/** What tests inject into {@link createMediaTools}. */
export interface MediaToolsOverrides {
  /** name resolution instead of DNS */
  resolver?: Resolver;
  /** the HTTP transport (e.g. one that refuses anything but loopback) */
  transport?: HttpTransport;
  /** limits of the extraction pool (shorter timeouts, smaller memory caps) */
  extraction?: Omit<ExtractPoolOptions, 'log'>;
  /** a pool shared with others (deps.ts also formats long answers in it); its owner closes it, not `close()` */
  pool?: ExtractPool;
}

/**
 * The {@link MediaTools} of a running bridge: SSRF-safe fetches (public addresses only unless FETCH_ALLOW_HOSTS
 * allows a host or range for customers' links, or ANSWER_IMAGE_ALLOW_HOSTS for an answer's images; every redirect
 * re-checked; the connection goes to the address that was checked), MEDIA_MAX_BYTES for downloads, FILE_MAX_BYTES
 * for files, extraction in a worker pool with time and memory caps (created here, stopped by `close()`), and logs
 * that name the reason and the host, never a query string.
 */
export function createMediaTools(config: MediaConfig, log: Logger, o: MediaToolsOverrides = {}): MediaTools {
  const inject = { ...(o.resolver ? { resolver: o.resolver } : {}), ...(o.transport ? { transport: o.transport } : {}) };
  const pageFetch = { allowList: parseAllowList(config.allowHosts), ...inject };
  // Apart from customers' links: a prompt-injected `![](…)` in an answer must not reach what a link may.
  const imageFetch = { allowList: parseAllowList(config.answerImageAllowHosts), ...inject };
  const pool = o.pool ?? createExtractPool({ ...o.extraction, log });
  const refused = (e: unknown, url: string, what: string) => {
    if (e instanceof FetchRefusedError || e instanceof ExtractionError) log.warn({ reason: e.reason, url: redactUrl(url) }, `${what} not read`);
    else log.warn({ err: e instanceof Error ? e.message : String(e), url: redactUrl(url) }, `${what} not read`);
    return null;
  };

  const asImage = (file: MediaFile | { data: Buffer; filename: string | null }): ImageInput | null => {
    const type = sniffImageType(file.data);
    return type ? { data: file.data, mime: type.mime, name: `${(file.filename ?? 'image').replace(/\.[^.]*$/, '') || 'image'}.${type.ext}` } : null;
  };

  return {
    maxBytes: config.maxBytes,
    fileMaxBytes: config.fileMaxBytes,
    asImage,
    fileText: async (file, signal) => {
      const about = { contentType: file.contentType, bytes: file.data.length };
      if (file.data.length > config.fileMaxBytes) {
        log.info({ reason: 'too_large', ...about, limit: config.fileMaxBytes }, 'file text not extracted');
        return null;
      }
      try {
        const r = await pool.file(file.data, { filename: file.filename, contentType: file.contentType, maxChars: FILE_MAX_CHARS }, signal);
        return { kind: r.kind, text: r.truncated ? `${r.text}…（文件较长，只读了前一部分）` : r.text };
      } catch (e) {
        if (signal?.aborted) throw e;
        // Whatever went wrong, the customer gets an answer without the file rather than a retried job.
        const reason = e instanceof FileTextError || e instanceof ExtractionError ? e.reason : 'extraction_failed';
        log.info({ reason, ...about }, 'file text not extracted');
        return null;
      }
    },
    readPage: async (url, signal) => {
      try {
        const page = await fetchPageSummary(url, { fetchOptions: pageFetch, signal, extract: pool.page });
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
            ...imageFetch,
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
    close: async () => {
      if (!o.pool) await pool.close();
    },
  };
}
