import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** Why a body was refused; every reason maps to HTTP 400. */
export type XmlProblem = 'doctype' | 'malformed' | 'not_an_object';

export class XmlError extends Error {
  override readonly name = 'XmlError';
  constructor(
    readonly problem: XmlProblem,
    message: string,
  ) {
    super(message);
  }
}

/** A parsed element: text, or child elements by name (repeated names become arrays). */
export type XmlValue = string | XmlElement | XmlValue[];
export interface XmlElement {
  [name: string]: XmlValue;
}

const CDATA = '#cdata';

/**
 * fast-xml-parser's defaults are unsafe for us: it expands entities (incl. DOCTYPE-declared ones) and turns
 * numeric text into numbers, which corrupts 64-bit MsgIds and ids with leading zeros. Entities stay raw here
 * and CDATA is kept apart so that only real (non-CDATA) text has its five predefined entities decoded.
 */
const parser = createParser();

function createParser(): XMLParser {
  return new XMLParser({
    ignoreAttributes: true,
    processEntities: false,
    htmlEntities: false,
    parseTagValue: false,
    trimValues: true,
    cdataPropName: CDATA,
    ignoreDeclaration: true,
    ignorePiTags: true,
    maxNestedTags: 16,
  });
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (m, name: string) => {
    if (name[0] !== '#') return PREDEFINED[name] ?? m;
    const code = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : m;
  });
}

function normalise(v: unknown): XmlValue {
  if (Array.isArray(v)) return v.map(normalise);
  if (v === null || v === undefined) return '';
  if (typeof v !== 'object') return decodeEntities(String(v));
  const obj = v as Record<string, unknown>;
  const names = Object.keys(obj);
  if (names.includes(CDATA)) {
    // <a><![CDATA[x]]></a> or mixed text + CDATA: the text value is the CDATA joined raw.
    const parts = obj[CDATA];
    const cdata = Array.isArray(parts) ? parts.join('') : String(parts ?? '');
    const text = typeof obj['#text'] === 'string' ? decodeEntities(obj['#text']) : '';
    return text + cdata;
  }
  const out: XmlElement = {};
  for (const name of names) out[name] = normalise(obj[name]);
  return out;
}

/**
 * Parses a WeChat/WeCom XML document safely.
 * @param xml the whole body (UTF-8 text)
 * @returns the root element's children, e.g. `{ ToUserName: 'corp', Encrypt: '…' }`; every leaf is a string
 * @throws XmlError `doctype` when the text contains `<!DOCTYPE` or `<!ENTITY` (refused before parsing),
 *   `malformed` when it is not well-formed XML, `not_an_object` when the root has no child elements
 */
export function parseXml(xml: string): XmlElement {
  if (/<!\s*(DOCTYPE|ENTITY)/i.test(xml)) throw new XmlError('doctype', 'DOCTYPE and ENTITY declarations are refused');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new XmlError('malformed', `malformed XML: ${valid.err.msg}`);
  const doc = parser.parse(xml) as Record<string, unknown>;
  const rootNames = Object.keys(doc);
  const root = rootNames.length === 1 ? normalise(doc[rootNames[0] as string]) : null;
  if (!root || typeof root !== 'object' || Array.isArray(root)) {
    throw new XmlError('not_an_object', 'XML root must hold child elements');
  }
  return root;
}

/** The text of a direct child, or undefined when it is missing or not text. */
export function xmlText(el: XmlElement, name: string): string | undefined {
  const v = el[name];
  return typeof v === 'string' ? v : undefined;
}
