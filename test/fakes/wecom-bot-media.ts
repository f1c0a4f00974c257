/**
 * The two HTTP endpoints WeCom's side owns in the smart-bot callback protocol, on one loopback server
 * (127.0.0.1, random port): encrypted media downloads (wecom-aibot-protocol.md §3 "Media download", §9.3) and the
 * one-shot `response_url` (§6).
 *
 * - `GET /media/<name>?sign=…`: the bytes given to `addMedia`, encrypted like WeCom (callback key, or the URL's own
 *   `aeskey`); `application/octet-stream` unless told, `Content-Disposition` with the file name when given. Unknown
 *   name → 404; older than 5 minutes → 403 with a COS-style XML error (the status WeCom's storage uses for an
 *   expired signature is unconfirmed).
 * - `POST /response/<code>`: a JSON body `{msgtype: "markdown", markdown: {content ≤ 20480 bytes}}` or
 *   `{msgtype: "template_card", template_card: {…}}`, answered HTTP 200 `{errcode, errmsg}` like WeCom APIs.
 *   Codes, checked in this order: {@link RESPONSE_URL_INVALID} code never issued or older than 1 hour;
 *   {@link RESPONSE_URL_USED} code already used once; 47001 body not a JSON object; 40008 msgtype neither;
 *   44004 empty markdown content; 45002 content over 20480 bytes. Only a success spends the URL (unconfirmed).
 *
 * Units: `at` / creation times are epoch ms from Date.now(); TTLs ms; sizes bytes.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createFakeLifecycle } from './fake-lifecycle.js';
import { contentDisposition } from './fake-media.js';
import { encryptMedia, encryptWithAeskey } from './wecom-bot-reference-crypto.js';

/** A response_url used a second time. WeCom's code is unpublished: this one is our pick; decide on errcode !== 0. */
export const RESPONSE_URL_USED = 600040;
/** A response_url never issued or older than 1 hour (also our pick, unpublished). */
export const RESPONSE_URL_INVALID = 600041;
/** Media URLs live 5 minutes; response_urls 1 hour. */
export const MEDIA_URL_TTL_MS = 5 * 60_000;
export const RESPONSE_URL_TTL_MS = 3600_000;

/** One POST to a response_url (every one, refused ones too, in arrival order). */
export interface ResponseUrlCall {
  code: string;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
  contentType: string | undefined;
  /** What the fake answered: 0 = delivered to the user. */
  errcode: number;
  /** Arrival, epoch ms. */
  at: number;
}

/** One request of any kind, for the lifecycle's bookkeeping. */
interface Rec {
  method: string;
  url: string;
  closedByClient: boolean;
}

/** A running media + response_url server; see {@link startWecomBotMediaServer}. */
export interface WecomBotMediaServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  /**
   * Serves `bytes` encrypted at `/media/<name>` for 5 minutes (`ttlMs`) and returns the full URL (with a COS-like
   * `sign` query). Encrypted with the bot's EncodingAESKey (callback mode) unless `aeskey` is given (long
   * connection: that key). Replaces an earlier medium of the same name.
   */
  addMedia(name: string, bytes: Buffer, o?: { aeskey?: string; contentType?: string; filename?: string; ttlMs?: number }): string;
  /** How many GETs `/media/<name>` got (any outcome). */
  mediaRequests(name: string): number;
  /** A fresh one-shot response_url `…/response/<code>`, valid 1 hour from now. */
  newResponseUrl(): string;
  /** Every POST to a response_url, in arrival order. */
  responses: ResponseUrlCall[];
  /** Polls `predicate` every 10 ms; rejects after `timeoutMs` (default 5000) naming `what`. */
  waitFor(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Stops listening and destroys open sockets; idempotent. */
  close(): Promise<void>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Starts the server for a bot whose callback EncodingAESKey is `encodingAesKey` (43 characters). */
export async function startWecomBotMediaServer(encodingAesKey: string): Promise<WecomBotMediaServer> {
  const media = new Map<string, { enc: Buffer; contentType: string; filename?: string; expiresAt: number }>();
  const hits = new Map<string, number>();
  const codes = new Map<string, { issuedAt: number; used: boolean }>();
  const responses: ResponseUrlCall[] = [];
  const requests: Rec[] = [];
  const life = createFakeLifecycle('wecom-bot-media', requests);

  const server = createServer((req, res) => {
    const rec: Rec = { method: req.method ?? '', url: req.url ?? '', closedByClient: false };
    life.serve(rec, res, () => handle(req, res, rec), () => void res.writeHead(500).end());
  });

  async function handle(req: IncomingMessage, res: ServerResponse, rec: Rec): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    life.received(rec);
    const path = new URL(rec.url, 'http://x').pathname;
    const m = /^\/(media|response)\/([^/]+)$/.exec(path);
    const name = m ? decodeURIComponent(m[2]!) : '';
    if (m?.[1] === 'media' && req.method === 'GET') return serveMedia(res, name);
    if (m?.[1] === 'response' && req.method === 'POST') {
      const errcode = respond(name, Buffer.concat(chunks).toString('utf8'), req.headers['content-type']);
      const text = JSON.stringify({ errcode, errmsg: errcode === 0 ? 'ok' : `fake response_url error ${errcode}` });
      return void res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(text);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }

  function serveMedia(res: ServerResponse, name: string): void {
    hits.set(name, (hits.get(name) ?? 0) + 1);
    const item = media.get(name);
    if (!item) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('no such media');
    if (Date.now() >= item.expiresAt) {
      const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>';
      return void res.writeHead(403, { 'content-type': 'application/xml' }).end(xml);
    }
    // Node 20 mishandles a header holding raw UTF-8 (latin1) file-name bytes unless it goes out on its own:
    // writeHead(status, {...}) with content-length throws ERR_INVALID_CHAR, and writing the headers together with a
    // Buffer body mangles the bytes. So: setHeader, flush the headers, then the body.
    res.setHeader('content-type', item.contentType);
    res.setHeader('content-length', item.enc.length);
    if (item.filename !== undefined) res.setHeader('content-disposition', contentDisposition(item.filename));
    res.writeHead(200);
    res.flushHeaders();
    res.end(item.enc);
  }

  function respond(code: string, raw: string, contentType: string | undefined): number {
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      /* recorded as text */
    }
    const issued = codes.get(code);
    const errcode = ((): number => {
      if (!issued || Date.now() - issued.issuedAt >= RESPONSE_URL_TTL_MS) return RESPONSE_URL_INVALID;
      if (issued.used) return RESPONSE_URL_USED;
      if (!isObj(body)) return 47001;
      if (body.msgtype === 'template_card') return isObj(body.template_card) ? 0 : 47001;
      if (body.msgtype !== 'markdown') return 40008;
      const content = isObj(body.markdown) ? body.markdown.content : undefined;
      if (typeof content !== 'string' || content === '') return 44004;
      return Buffer.byteLength(content) > 20480 ? 45002 : 0;
    })();
    if (errcode === 0) issued!.used = true;
    responses.push({ code, body, contentType, errcode, at: Date.now() });
    return errcode;
  }

  const port = await life.listen(server);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    addMedia(name, bytes, o = {}) {
      const enc = o.aeskey !== undefined ? encryptWithAeskey(bytes, o.aeskey) : encryptMedia(bytes, encodingAesKey);
      const contentType = o.contentType ?? 'application/octet-stream';
      media.set(name, { enc, contentType, filename: o.filename, expiresAt: Date.now() + (o.ttlMs ?? MEDIA_URL_TTL_MS) });
      const sign = encodeURIComponent(`q-sign-algorithm=sha1&q-sign-time=${Math.floor(Date.now() / 1000)}&q-signature=${randomBytes(20).toString('hex')}`);
      return `${url}/media/${encodeURIComponent(name)}?sign=${sign}`;
    },
    mediaRequests: (name) => hits.get(name) ?? 0,
    newResponseUrl() {
      const code = randomBytes(24).toString('base64url');
      codes.set(code, { issuedAt: Date.now(), used: false });
      return `${url}/response/${code}`;
    },
    responses,
    async waitFor(predicate, timeoutMs = 5000, what = 'condition') {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (life.closing) throw new Error(`fake wecom-bot-media closed while waiting for ${what}`);
        if (Date.now() >= deadline) throw new Error(`fake wecom-bot-media: no ${what} after ${timeoutMs} ms`);
        await life.sleep(10);
      }
    },
    close: () => life.close(server),
  };
}
