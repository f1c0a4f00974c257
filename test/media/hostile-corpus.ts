import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';

/**
 * Hostile inputs, generated (never downloaded), for the cost-of-hostile-input tests. Sizes are chosen to sit just
 * inside the caps an attacker can reach: 1 MiB pages, 5 MiB files.
 */

/**
 * The page from the security review: one table row of `cells` cells with `colspan=1000`. 30 cells are 585 bytes;
 * html-to-text's table layout (no longer used) blocked its thread ~4 s on it, 100 cells more than a minute.
 */
export function colspanPage(cells: number): string {
  return `<html><body><table><tr>${'<td colspan=1000>x'.repeat(cells)}</table></body></html>`;
}

/** 200,000 unclosed `<div>`s after a paragraph (1 MB): quadratic in htmlparser2's open-element stack. */
export function deeplyNestedPage(): string {
  return `<html><body><p>visible before the trap</p>${'<div>'.repeat(200_000)}never reached</body></html>`;
}

/** `count` sibling paragraphs, 8 bytes each: 130,000 of them is ~1 MiB and 6× the tag cap. */
export function manyTagsPage(count: number): string {
  return `<html><body>${'<p>x</p>'.repeat(count)}</body></html>`;
}

/**
 * A zlib stream of `mib` MiB of one repeated byte, produced chunk by chunk so the test never holds the inflated
 * data (400 MiB deflate to ~400 KB). About 1 s per 400 MiB.
 */
export async function deflatedRun(mib: number, byte = 0x20): Promise<Buffer> {
  const deflate = zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<void>((resolve, reject) => {
    deflate.once('end', resolve);
    deflate.once('error', reject);
  });
  const chunk = Buffer.alloc(1024 * 1024, byte);
  for (let i = 0; i < mib; i++) {
    if (!deflate.write(chunk)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  return Buffer.concat(out);
}

/** `bytes` random bytes: binary data a customer names `.txt` (NUL bytes all but certain in the first 8 KiB). */
export function binaryBytes(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** A content stream of `ops` text operators that draw nothing readable: CPU for pdf.js, no text to stop early. */
export function busyContentStream(ops: number): Buffer {
  return Buffer.from(`BT /F1 12 Tf ${'1 0 Td ( ) Tj '.repeat(ops)}ET`, 'latin1');
}
