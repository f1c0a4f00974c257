/**
 * HTML → title and readable text, without fetching. Text extraction is html-to-text: it walks an htmlparser2 DOM
 * (a forgiving parser that copes with the broken markup of real pages), already drops `<script>`/`<style>` content,
 * lays blocks out on their own lines (cheerio's `.text()` glues `<p>a</p><p>b</p>` into `ab`), and lets us skip
 * boilerplate by selector. We chose it over @mozilla/readability + a DOM emulation: Readability's scoring returns
 * nothing on short or product pages and drops WeChat articles, whose `#js_content` is `visibility: hidden` until
 * the page's script runs; it is also tested against jsdom only. The title comes from an htmlparser2 SAX pass
 * (html-to-text cannot read attributes such as og:title).
 */
import { compile, type FormatCallback } from 'html-to-text';
import { Parser } from 'htmlparser2';
import { collapseWhitespace } from './text-cap.js';

/** What a page says about itself, before any length cap on `text`. */
export interface HtmlText {
  /** og:title, else the first `<title>`; whitespace collapsed, at most 300 characters; null when neither has text */
  title: string | null;
  /** readable text, whitespace collapsed, paragraphs separated by a blank line */
  text: string;
}

/** Elements that are page furniture, not content. `head` covers fragments without `<body>`. */
const SKIP = [
  'head', 'title', 'nav', 'header', 'footer', 'aside', 'noscript', 'template', 'svg', 'canvas', 'form', 'button',
  'select', 'iframe', 'object', 'video', 'audio', 'img', 'picture', 'dialog', '[hidden]', '[aria-hidden="true"]',
];

/**
 * Characters of decoded HTML parsed at most (the page cap is 1 MiB of bytes, so this only bites on a caller that
 * passes more). Cut here rather than by html-to-text's `maxInputLength`, which also cuts but writes a console warning.
 */
export const MAX_INPUT_CHARS = 1024 * 1024;

/**
 * A table cell as inline text, ` | ` before every cell but the first of its row. html-to-text's own table layout
 * (`dataTable`) is not used at all: it pads a grid whose size is columns² × colspan (a 585-byte page of 30
 * `<td colspan=1000>` blocked a thread for seconds). Rows as lines and cells as `a | b` are linear in the input,
 * ignore colspan/rowspan, and read just as well to an LLM.
 */
const tableCell: FormatCallback = (elem, walk, builder) => {
  // The nodes are htmlparser2's domhandler nodes; @types/html-to-text leaves their sibling links out.
  let prev = (elem as Sibling).prev;
  while (prev && prev.type !== 'tag') prev = prev.prev; // text and comments between cells do not count
  if (prev && (prev.name === 'td' || prev.name === 'th')) builder.addLiteral(' | ');
  walk(elem.children, builder);
};

interface Sibling {
  type: string;
  name?: string;
  prev?: Sibling | null;
}

const ROW_BLOCK = { leadingLineBreaks: 1, trailingLineBreaks: 1 };

const COMMON = {
  wordwrap: false as const,
  formatters: { tableCell },
  limits: {
    // html-to-text recurses per nesting level: 200k nested <div>s (1 MB) would overflow the stack. Real pages nest
    // a few dozen deep; past 200 the rest of that branch is dropped.
    maxDepth: 200,
    // Children of one element: a real page has a few hundred at most; the rest of a 20k-sibling list is dropped.
    maxChildNodes: 5_000,
    maxBaseElements: 50,
    maxInputLength: MAX_INPUT_CHARS,
    ellipsis: '',
  },
  selectors: [
    ...SKIP.map((selector) => ({ selector, format: 'skip' })),
    { selector: 'a', options: { ignoreHref: true } },
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
    { selector: 'table', format: 'block', options: ROW_BLOCK },
    { selector: 'caption', format: 'block', options: ROW_BLOCK },
    { selector: 'tr', format: 'block', options: ROW_BLOCK },
    { selector: 'td', format: 'tableCell' },
    { selector: 'th', format: 'tableCell' },
    // The `> ` quote prefix is re-applied to every line at every nesting level (depth × text); an LLM needs no
    // quote marks, so a quote is an ordinary block.
    { selector: 'blockquote', format: 'block', options: { leadingLineBreaks: 2, trailingLineBreaks: 2 } },
  ],
};

/** The main content when the page marks it (`<main>`, `<article>`, role=main, WeChat's `#js_content`). */
const mainContentToText = compile({
  ...COMMON,
  baseElements: { selectors: ['main', 'article', '[role="main"]', '#js_content'], orderBy: 'occurrence', returnDomByDefault: false },
});
/** Otherwise the whole body (or the whole fragment when there is no `<body>`). */
const bodyToText = compile({ ...COMMON, baseElements: { selectors: ['body'], returnDomByDefault: true } });

const MAX_TITLE_CHARS = 300;

/**
 * Opening tags parsed at most. htmlparser2 keeps its open-element stack with `Array#unshift`, so a document of N
 * unclosed tags costs O(N²): 200k nested `<div>`s (1 MB) take ~10 s of a thread, 20k about 0.1 s. A real page
 * rarely has 20k tags, and we keep only a few thousand characters of text anyway.
 */
export const MAX_TAGS = 20_000;
const MAIN_MARKERS = /<(?:main|article)\b|\brole\s*=\s*["']?main\b|\bid\s*=\s*["']?js_content\b/i;

/**
 * Extracts title and readable text from a decoded HTML document. Never throws on malformed or hostile markup.
 * Synchronous and CPU-bound (tens of ms for a large page; bounded by {@link MAX_TAGS} and {@link MAX_INPUT_CHARS}
 * for hostile ones): run it in the extraction pool (`extract-pool.ts`), never on the event loop. Tables come out
 * as one line per row, cells separated by ` | `.
 * @param html the document as text (decode bytes with decodeHtml first)
 */
export function htmlToText(html: string): HtmlText {
  const bounded = cutAtTagLimit(html.length > MAX_INPUT_CHARS ? html.slice(0, MAX_INPUT_CHARS) : html, MAX_TAGS);
  // The marker test spares a second parse on the many pages that mark no main content.
  const main = MAIN_MARKERS.test(bounded) ? collapseWhitespace(mainContentToText(bounded)) : '';
  return { title: titleOf(bounded), text: main || collapseWhitespace(bodyToText(bounded)) };
}

/**
 * `html` cut before its (maxTags+1)-th `<` + letter. Every tag htmlparser2 opens starts with such a pair, so this
 * bounds its stack depth whatever the markup does (text inside scripts counts too, which only cuts earlier).
 */
function cutAtTagLimit(html: string, maxTags: number): string {
  const tagStart = /<[a-zA-Z]/g;
  let count = 0;
  while (tagStart.exec(html)) {
    if (++count > maxTags) return html.slice(0, tagStart.lastIndex - 2);
  }
  return html;
}

function titleOf(html: string): string | null {
  let ogTitle: string | null = null;
  let title: string | null = null;
  let inTitle = false;
  let svgDepth = 0;
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (name === 'svg') svgDepth++;
        // An SVG icon's <title> is a tooltip, not the page's title.
        if (name === 'title' && title === null && svgDepth === 0) inTitle = true;
        if (name === 'meta' && ogTitle === null && (attrs.property ?? attrs.name ?? '').toLowerCase() === 'og:title') {
          ogTitle = collapseWhitespace(attrs.content ?? '') || null;
        }
      },
      ontext(text) {
        if (inTitle) title = (title ?? '') + text;
      },
      onclosetag(name) {
        if (name === 'svg' && svgDepth > 0) svgDepth--;
        if (name === 'title' && inTitle) {
          inTitle = false;
          title = title ?? '';
        }
      },
    },
    { decodeEntities: true },
  );
  parser.end(html);
  const chosen = ogTitle ?? (title !== null ? collapseWhitespace(title) || null : null);
  return chosen === null ? null : chosen.slice(0, MAX_TITLE_CHARS);
}
