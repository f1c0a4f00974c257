/**
 * Text out of a file a customer sent. PDFs go through pdf-parse 2.x (a class around Mozilla's pdf.js: the
 * de-facto text extractor; each parser holds a pdf.js document that must be destroyed), after a pre-scan that
 * bounds what its streams inflate to (pdf-inflate-scan.ts); text files are decoded as UTF-8, with GB18030 for files
 * that are not valid UTF-8. The file's own size limit is the caller's: it knows what it downloaded. CPU-bound and
 * memory-hungry on hostile input: runs in the extraction pool (extract-pool.ts), not on the event loop.
 */
import { decodeText, charsetOf } from './charset.js';
import { PDF_MAX_INFLATED_BYTES, scanPdfInflation } from './pdf-inflate-scan.js';
import { mimeOf } from './safe-fetch.js';
import { capChars, collapseWhitespace } from './text-cap.js';

/**
 * `unsupported`: not a PDF or text file; `unreadable`: claims to be one but cannot be read (corrupt, encrypted,
 * binary); `too_large`: larger than the caller's limit, or a PDF whose streams inflate past the pre-scan's budget.
 */
export type FileTextErrorReason = 'unsupported' | 'unreadable' | 'too_large';

/** Why extractFileText produced no text. Branch on `reason`; the message names no file content. */
export class FileTextError extends Error {
  override readonly name = 'FileTextError';
  constructor(
    readonly reason: FileTextErrorReason,
    message: string,
  ) {
    super(message);
  }
}

/** Text from a file, capped. */
export interface FileText {
  kind: 'pdf' | 'text';
  /** PDF: whitespace collapsed, pages separated by a blank line; text files: as written (CRLF → LF); may be '' */
  text: string;
  /** whether `text` was cut at `maxChars` (for PDFs: also when pages past `maxPages` were not read) */
  truncated: boolean;
  /** PDF only: the document's page count (not the number read) */
  pages?: number;
}

/** How extractFileText reads one file. */
export interface FileTextOptions {
  /** the customer's file name (its extension decides between text and unsupported), or null */
  filename?: string | null;
  /** the Content-Type the file came with, or null */
  contentType?: string | null;
  /** characters (UTF-16 code units) of text kept */
  maxChars: number;
  /** PDF pages read at most (default 50): a 2,000-page PDF must not run to the end */
  maxPages?: number;
  /** PDF: bytes all its zlib streams may inflate to together (default {@link PDF_MAX_INFLATED_BYTES}) */
  maxInflatedBytes?: number;
}

const TEXT_EXTENSIONS = new Set(['txt', 'text', 'md', 'markdown', 'csv', 'tsv', 'json', 'log']);
const TEXT_MIME_EXTRA = new Set(['application/json', 'application/x-ndjson', 'application/csv']);
const DEFAULT_MAX_PAGES = 50;

/**
 * Extracts the text of a PDF (recognised by its `%PDF-` header, its `.pdf` name or `application/pdf`) or of a
 * plain-text file (`.txt`, `.md`, `.csv`, `.tsv`, `.json`, `.log`, `text/*`, `application/json`).
 * @param bytes the whole file
 * @returns `{ kind, text, truncated, pages? }`
 * @throws FileTextError `unsupported` for any other type (Word, images, archives…); `unreadable` for a PDF that
 *   pdf.js cannot parse (corrupt, password-protected) or a "text" file holding binary data; `too_large` for a PDF
 *   whose streams inflate past `maxInflatedBytes` (a decompression bomb, refused before pdf.js reads it)
 */
export async function extractFileText(bytes: Buffer, options: FileTextOptions): Promise<FileText> {
  const ext = extensionOf(options.filename);
  const mime = mimeOf(options.contentType);
  if (isPdfMagic(bytes) || ext === 'pdf' || mime === 'application/pdf') return pdfText(bytes, options);
  if (TEXT_EXTENSIONS.has(ext) || mime?.startsWith('text/') || (mime && TEXT_MIME_EXTRA.has(mime))) {
    return plainText(bytes, options);
  }
  throw new FileTextError('unsupported', `unsupported file type (${ext ? `.${ext}` : 'no extension'}, ${mime ?? 'no content type'})`);
}

async function pdfText(bytes: Buffer, options: FileTextOptions): Promise<FileText> {
  const maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
  const maxInflated = options.maxInflatedBytes ?? PDF_MAX_INFLATED_BYTES;
  const scan = scanPdfInflation(bytes, maxInflated);
  if (!scan.ok) {
    throw new FileTextError('too_large', `PDF streams inflate past ${maxInflated} bytes or number more than the scan allows (${scan.streams} streams)`);
  }
  // Loaded on the first PDF: pdf.js is ~30 MiB of a worker's memory, which a thread that only reads pages spares.
  const { PDFParse } = await import('pdf-parse');
  // isEvalSupported: false keeps pdf.js from compiling font programs with `new Function` (CVE-2024-4367 class).
  // A copy (new Uint8Array): pdf.js may transfer, i.e. detach, the buffer it is given; the caller keeps its bytes.
  const parser = new PDFParse({ data: new Uint8Array(bytes), isEvalSupported: false });
  try {
    let text = '';
    let total = 0;
    // Page by page, so a long document stops once maxChars are in hand instead of being parsed to the end.
    for (let page = 1; page <= Math.min(total || 1, maxPages); page++) {
      const result = await parser.getText({ partial: [page], pageJoiner: '' });
      total = result.total;
      const pageText = collapseWhitespace(result.pages[0]?.text ?? '');
      if (pageText) text += text ? `\n\n${pageText}` : pageText;
      if (text.length > options.maxChars) break;
    }
    const capped = capChars(text, options.maxChars);
    return { kind: 'pdf', text: capped.text, truncated: capped.truncated || total > maxPages, pages: total };
  } catch (e) {
    // pdf-parse's exceptions: InvalidPDFException, PasswordException, FormatError, UnknownErrorException.
    const what = (e as Error | null)?.name === 'PasswordException' ? 'password-protected' : 'not a readable PDF';
    throw new FileTextError('unreadable', `PDF ${what} (${(e as Error | null)?.name ?? 'error'})`);
  } finally {
    await parser.destroy();
  }
}

function plainText(bytes: Buffer, options: FileTextOptions): FileText {
  if (!hasUtf16Bom(bytes) && bytes.subarray(0, 8192).includes(0)) {
    // NUL bytes do not occur in UTF-8/GB18030 text: this is a binary file with a text name.
    throw new FileTextError('unreadable', 'file named as text holds binary data');
  }
  const text = decodeText(bytes, charsetOf(options.contentType)).replace(/\r\n?/g, '\n').trim();
  const capped = capChars(text, options.maxChars);
  return { kind: 'text', text: capped.text, truncated: capped.truncated };
}

/** `Report.Final.PDF` → `pdf`; '' without an extension. */
function extensionOf(filename: string | null | undefined): string {
  const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

/** The PDF spec lets `%PDF-` start anywhere in the first 1024 bytes (some generators prepend junk). */
function isPdfMagic(bytes: Buffer): boolean {
  return bytes.subarray(0, 1024).includes('%PDF-');
}

function hasUtf16Bom(b: Buffer): boolean {
  return b.length >= 2 && ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff));
}
