/**
 * Bytes → text for fetched pages and uploaded files. Detection of an HTML page's declared encoding is
 * encoding-sniffer (the WHATWG sniffing algorithm: BOM, then the transport's `charset`, then a `<meta>` prescan);
 * decoding is iconv-lite, whose pure-JS tables work whatever ICU the Node binary was built with (Node's own
 * TextDecoder only knows GBK/GB18030 with full ICU) and which the tests also use to produce GBK bytes.
 */
import { isUtf8 } from 'node:buffer';
import { getEncoding } from 'encoding-sniffer';
import iconv from 'iconv-lite';

/** The `charset` parameter of a Content-Type header (`text/html; charset="GBK"` → `gbk`), or null. */
export function charsetOf(contentType: string | null | undefined): string | null {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return m?.[1] ? m[1].toLowerCase() : null;
}

/**
 * Decodes an HTML document the way a browser picks its encoding: BOM, then the Content-Type charset, then
 * `<meta charset>` / `<meta http-equiv="content-type">` in the first 1024 bytes. When none of them declares an
 * encoding, UTF-8 is assumed and, if the bytes are not valid UTF-8, GB18030 (undeclared legacy Chinese pages; the
 * browser default of windows-1252 would make them unreadable and is never right for our customers' links).
 * @param contentType the response's Content-Type header, or null
 */
export function decodeHtml(bytes: Buffer, contentType: string | null): string {
  const transportLayerEncodingLabel = charsetOf(contentType) ?? undefined;
  const declared = getEncoding(bytes, { transportLayerEncodingLabel, defaultEncoding: 'utf-8' });
  // getEncoding does not say whether its answer was the default; a second run with another default tells.
  const undeclared = declared !== getEncoding(bytes, { transportLayerEncodingLabel, defaultEncoding: 'windows-1252' });
  if (undeclared) return decodeUtf8OrGb18030(bytes);
  return decodeAs(bytes, declared);
}

/**
 * Decodes a text file: a BOM (UTF-8, UTF-16LE/BE) wins, then `charset` when given and known, else UTF-8 when the
 * bytes are valid UTF-8, else GB18030 (files saved by Chinese Windows tools are GBK, which GB18030 contains).
 * @param charset e.g. from the upload's Content-Type; unknown names are ignored
 */
export function decodeText(bytes: Buffer, charset?: string | null): string {
  const bom = bomEncoding(bytes);
  if (bom) return iconv.decode(bytes, bom);
  if (charset && iconv.encodingExists(iconvName(charset))) return decodeAs(bytes, charset);
  return decodeUtf8OrGb18030(bytes);
}

function decodeUtf8OrGb18030(bytes: Buffer): string {
  return isUtf8(bytes) ? iconv.decode(bytes, 'utf-8') : iconv.decode(bytes, 'gb18030');
}

/** Decodes with a WHATWG/IANA label; an encoding iconv-lite lacks (e.g. `x-user-defined`) falls back to UTF-8. */
function decodeAs(bytes: Buffer, label: string): string {
  const name = iconvName(label);
  return iconv.encodingExists(name) ? iconv.decode(bytes, name) : iconv.decode(bytes, 'utf-8');
}

/**
 * The WHATWG Encoding Standard decodes `gbk` and `gb2312` with the GB18030 decoder (pages labelled gb2312 routinely
 * contain GBK-only characters); iconv-lite's `gbk`/`gb2312` are the narrower CP936, so map them up.
 */
function iconvName(label: string): string {
  const l = label.trim().toLowerCase();
  return l === 'gbk' || l === 'gb2312' || l === 'x-gbk' || l === 'gb_2312-80' ? 'gb18030' : l;
}

function bomEncoding(b: Buffer): string | null {
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return 'utf-8';
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return 'utf-16le';
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return 'utf-16be';
  return null;
}
