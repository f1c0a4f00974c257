import { SaxesParser } from 'saxes';

/** Why a body was refused; every reason maps to HTTP 400. */
export type XmlProblem = 'doctype' | 'malformed' | 'not_an_object';

/** A body refused by `parseXml`; `problem` says why. */
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

/** WeChat documents are two or three levels deep; anything far deeper is an attack on the stack. */
const MAX_DEPTH = 16;
/**
 * Elements parsed at most. A callback envelope has a handful and the richest OA event (a mass-send report, a
 * picture-pick list) a few dozen; this runs before the signature check, so a stranger's 64 KB of `<a/>` must be
 * refused after a few hundred elements rather than built into a tree.
 */
export const MAX_ELEMENTS = 256;
/** WeChat sends no attributes at all; a body full of them is refused early (saxes checks each for duplicates). */
export const MAX_ATTRIBUTES = 64;

interface Frame {
  name: string;
  text: string;
  children: XmlElement | null;
}

/**
 * Parses a WeChat/WeCom XML document safely and strictly.
 *
 * saxes (the strict XML 1.0 parser jsdom uses) rather than fast-xml-parser: it rejects every well-formedness
 * error in the same pass (fast-xml-parser needs a separate validator pass), never expands declared entities,
 * never converts text to numbers (64-bit MsgIds stay exact), decodes only the five predefined entities and
 * character references, and measured ~3× faster on callback-sized documents — the ack path parses two per
 * request. DOCTYPE/ENTITY declarations are refused before parsing.
 * @param xml the whole body (UTF-8 text)
 * @returns the root element's children, e.g. `{ ToUserName: 'corp', Encrypt: '…' }`; leaves are strings
 *   (CDATA and text joined, trimmed); attributes are ignored
 * @throws XmlError `doctype` when the text contains `<!DOCTYPE` or `<!ENTITY`, `malformed` when it is not
 *   well-formed (or nests deeper than 16, or has more than {@link MAX_ELEMENTS} elements or
 *   {@link MAX_ATTRIBUTES} attributes), `not_an_object` when the root has no child elements
 */
export function parseXml(xml: string): XmlElement {
  if (/<!\s*(DOCTYPE|ENTITY)/i.test(xml)) throw new XmlError('doctype', 'DOCTYPE and ENTITY declarations are refused');
  const parser = new SaxesParser({ position: false });
  const stack: Frame[] = [];
  let root: Frame | null = null;
  let elements = 0;
  let attributes = 0;
  // saxes reports a tag once it is opened; counting there bounds the work a hostile body can cause to what the
  // parser did before the cap (linear), whatever follows.
  parser.on('opentagstart', () => {
    if (++elements > MAX_ELEMENTS) throw new XmlError('malformed', `XML has more than ${MAX_ELEMENTS} elements`);
    if (stack.length >= MAX_DEPTH) throw new XmlError('malformed', 'XML nests too deep');
  });
  parser.on('attribute', () => {
    if (++attributes > MAX_ATTRIBUTES) throw new XmlError('malformed', `XML has more than ${MAX_ATTRIBUTES} attributes`);
  });
  parser.on('opentag', (tag) => {
    stack.push({ name: tag.name, text: '', children: null });
  });
  const onText = (t: string) => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('closetag', () => {
    const done = stack.pop() as Frame;
    const parent = stack[stack.length - 1];
    if (!parent) {
      root = done;
      return;
    }
    const value: XmlValue = done.children ?? done.text.trim();
    const siblings = (parent.children ??= {});
    const prev = siblings[done.name];
    // Appended in place: copying the array per sibling made a body of N repeated elements cost N².
    if (prev === undefined) siblings[done.name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else siblings[done.name] = [prev, value];
  });
  try {
    parser.write(xml).close();
  } catch (e) {
    if (e instanceof XmlError) throw e;
    throw new XmlError('malformed', `malformed XML: ${e instanceof Error ? e.message : String(e)}`);
  }
  const children = (root as Frame | null)?.children;
  if (!children) throw new XmlError('not_an_object', 'XML root must hold child elements');
  return children;
}

/** The text of a direct child, or undefined when it is missing or not text. */
export function xmlText(el: XmlElement, name: string): string | undefined {
  const v = el[name];
  return typeof v === 'string' ? v : undefined;
}
