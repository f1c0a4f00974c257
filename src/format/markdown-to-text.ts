/**
 * Markdown → WeChat plain text. WeCom kf and Official Account chats show text messages raw, so `**bold**`,
 * `# heading` or `| a | b |` would reach the customer as noise. We walk markdown-it's token stream instead of
 * rewriting the source with regexes, so code spans, escapes and entities are handled by a real parser.
 *
 * Output conventions (chosen for a phone chat bubble):
 * - headings: their text as its own paragraph; bold/italic/strikethrough: plain text;
 * - bullet lists: `• item`; ordered lists: `N. item` counting from the list's real start; every nesting level,
 *   and every continuation line of an item, is indented by two spaces; items are never separated by blank lines;
 * - links: `text (url)`, just `url` when the text is the url; `mailto:` links show the bare address; urls are
 *   markdown-it's normalised (percent-encoded) href, which WeChat's own link detection can still click;
 * - images: `alt (url)`, or `url` without alt (or a marker, see image-marker.ts); inline code: its text;
 * - code blocks: the code as its own paragraph, without fences;
 * - blockquotes: every line prefixed with `｜` (full-width bar, no space), blank quote lines become a lone `｜`;
 * - tables: one line per row (header included), cells joined by ` | `; horizontal rules: `——————`;
 * - raw HTML is kept as text (`html: false`); soft and hard breaks become `\n`.
 * Whole output: blocks separated by exactly one blank line, no trailing whitespace on any line (code lines
 * included), never two blank lines in a row (also inside code), no leading/trailing blank lines.
 */
import MarkdownIt from 'markdown-it';
import type { Token } from 'markdown-it';
import { imageMarker, markersToText, stripMarkerChars } from './image-marker.js';

interface TokenNode {
  token: Token;
  children: TokenNode[];
}

const HR = '——————';
const QUOTE_PREFIX = '｜';
const INDENT = '  ';

/** Nests markdown-it's flat open/close token list so each container is rendered from its own children. */
function toTree(tokens: readonly Token[]): TokenNode[] {
  const root: TokenNode[] = [];
  const stack: TokenNode[][] = [root];
  for (const token of tokens) {
    const siblings = stack[stack.length - 1] ?? root;
    if (token.nesting === -1) {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const node: TokenNode = { token, children: [] };
    siblings.push(node);
    if (token.nesting === 1) stack.push(node.children);
  }
  return root;
}

function renderBlocks(nodes: readonly TokenNode[]): string[] {
  return nodes.map(renderBlock).filter((block) => block.trim() !== '');
}

function renderBlock(node: TokenNode): string {
  const { token } = node;
  switch (token.type) {
    case 'inline':
      return renderInline(toTree(token.children ?? []));
    case 'bullet_list_open':
    case 'ordered_list_open':
      return renderList(node);
    case 'blockquote_open':
      return prefixLines(renderBlocks(node.children).join('\n\n'), QUOTE_PREFIX);
    case 'table_open':
      return tableRows(node.children).join('\n');
    case 'fence':
    case 'code_block':
      return token.content.replace(/\n$/, '');
    case 'hr':
      return HR;
    default:
      return node.children.length > 0 ? renderBlocks(node.children).join('\n\n') : token.content;
  }
}

function renderList(list: TokenNode): string {
  const ordered = list.token.type === 'ordered_list_open';
  const start = Number(list.token.attrGet('start') ?? 1);
  return list.children
    .map((item, index) => {
      const marker = ordered ? `${start + index}. ` : '• ';
      // Items keep their blocks on consecutive lines: a blank line inside a chat bubble reads as a new topic.
      const [first = '', ...rest] = renderBlocks(item.children).join('\n').split('\n');
      return [marker + first, ...rest.map((line) => INDENT + line)].join('\n');
    })
    .join('\n');
}

function tableRows(nodes: readonly TokenNode[]): string[] {
  return nodes.flatMap((node) => {
    if (node.token.type !== 'tr_open') return tableRows(node.children);
    const cells = node.children.map((cell) => renderBlocks(cell.children).join(' ').replace(/\n/g, ' '));
    return [cells.join(' | ')];
  });
}

function prefixLines(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

function renderInline(nodes: readonly TokenNode[]): string {
  return nodes.map(renderInlineNode).join('');
}

function renderInlineNode(node: TokenNode): string {
  const { token } = node;
  switch (token.type) {
    case 'text':
      return unwrapUnparsedBold(token.content);
    case 'softbreak':
    case 'hardbreak':
      return '\n';
    case 'link_open':
      return renderLink(String(token.attrGet('href') ?? ''), renderInline(node.children));
    case 'image':
      return renderImage(String(token.attrGet('src') ?? ''), renderInline(toTree(token.children ?? [])));
    default:
      // code_inline and text_special carry their literal text; emphasis containers only their children.
      return node.children.length > 0 ? renderInline(node.children) : token.content;
  }
}

/**
 * CommonMark refuses to close `**` when it follows punctuation and precedes a letter, and Chinese LLM answers hit
 * this constantly (`**注意：**请…`). The delimiters then survive as literal text, so we unwrap such pairs, but only
 * inside parsed text tokens: code spans never reach this point.
 */
function unwrapUnparsedBold(text: string): string {
  return text.includes('**') ? text.replace(/\*\*(?=[^\s*])([^*\n]*?[^\s*])\*\*/g, '$1') : text;
}

function safeDecode(url: string): string {
  try {
    return decodeURI(url);
  } catch {
    return url;
  }
}

function renderLink(href: string, text: string): string {
  const shown = href.startsWith('mailto:') ? href.slice('mailto:'.length) : href;
  const label = text.trim();
  // Autolinks show the decoded url as their text while href is percent-encoded; both mean "the text is the url".
  const sameAsUrl = [href, shown, safeDecode(href), safeDecode(shown)].includes(label);
  if (label === '' || sameAsUrl) return shown;
  return shown === '' ? label : `${label} (${shown})`;
}

/** Longer image sources (data: URLs pasted by a model, tracking monsters) are not worth a message part. */
const MAX_IMAGE_URL_CHARS = 1000;

function renderImage(src: string, alt: string): string {
  // Only a fetchable http(s) image becomes a marker (an image message, or `alt (url)` where images cannot be sent);
  // anything else would be a part the platform refuses (a data: URL is tens of KB), so only its alt text stays.
  if (!/^https?:\/\//i.test(src) || src.length > MAX_IMAGE_URL_CHARS) return alt.trim();
  // A marker here; createMarkdownToText writes it out as text unless the caller sends images itself.
  return imageMarker(src, alt.trim());
}

function normalizeOutput(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .replace(/^\n+|\n+$/g, '');
}

/**
 * Builds a converter with its own markdown-it instance (`html: false`, so raw HTML stays visible text;
 * `linkify: false`, so bare urls are left exactly as written). The returned function takes markdown (any
 * string, never throws) and returns plain text following the conventions in this module's header; text
 * without markdown syntax comes back unchanged. Lengths are not limited here: split afterwards by bytes.
 */
export function createMarkdownToText(opts: { imageMarkers?: boolean } = {}): (markdown: string) => string {
  const md = new MarkdownIt({ html: false, linkify: false });
  return (markdown) => {
    const text = normalizeOutput(renderBlocks(toTree(md.parse(stripMarkerChars(markdown), {}))).join('\n\n'));
    return opts.imageMarkers ? text : markersToText(text);
  };
}

let shared: ((markdown: string) => string) | undefined;
let sharedWithMarkers: ((markdown: string) => string) | undefined;

/**
 * {@link createMarkdownToText} with lazily created, module-wide instances (markdown-it is stateless per call).
 * @param opts.imageMarkers images become `image-marker.ts` markers (for channels that send images) instead of text
 */
export function markdownToText(markdown: string, opts: { imageMarkers?: boolean } = {}): string {
  if (opts.imageMarkers) {
    sharedWithMarkers ??= createMarkdownToText({ imageMarkers: true });
    return sharedWithMarkers(markdown);
  }
  shared ??= createMarkdownToText();
  return shared(markdown);
}
