/**
 * A minimal valid PDF built in memory: one page per entry of `pages`, each showing its text in Helvetica, with a
 * correct cross-reference table (byte offsets computed, not hand-counted). Only ASCII text; `(`, `)` and `\` are
 * escaped.
 */
export function makePdf(pages: string[]): Buffer {
  const objects: string[] = [];
  const pageIds = pages.map((_, i) => 4 + i * 2);
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[2] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${pages.length} >>`;
  objects[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>';
  pages.forEach((text, i) => {
    const escaped = text.replace(/[\\()]/g, (c) => `\\${c}`);
    const stream = `BT /F1 12 Tf 72 720 Td (${escaped}) Tj ET`;
    objects[4 + i * 2] =
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${5 + i * 2} 0 R >>`;
    objects[5 + i * 2] = `<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`;
  });
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  for (let id = 1; id < objects.length; id++) {
    offsets[id] = Buffer.byteLength(out, 'latin1');
    out += `${id} 0 obj\n${objects[id]}\nendobj\n`;
  }
  const xrefAt = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length}\n0000000000 65535 f \n`;
  for (let id = 1; id < objects.length; id++) out += `${String(offsets[id]).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length} /Root 1 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/**
 * A valid PDF whose `pages` pages all draw one shared content stream given as raw stream bytes (already encoded
 * with `filters`, e.g. deflated). Hostile shapes: a Flate bomb (a small stream that inflates to hundreds of MB), a
 * double-Flate bomb, or a CPU-heavy stream that every page re-parses.
 */
export function makePdfWithContent(stream: Buffer, o: { filters?: string[]; pages?: number } = {}): Buffer {
  const pages = o.pages ?? 1;
  const pageIds = Array.from({ length: pages }, (_, i) => 5 + i);
  const filter = o.filters?.length ? ` /Filter [${o.filters.map((f) => `/${f}`).join(' ')}]` : '';
  const objects: Array<string | Buffer[]> = [];
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[2] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${pages} >>`;
  objects[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>';
  objects[4] = [Buffer.from(`<< /Length ${stream.length}${filter} >>\nstream\n`, 'latin1'), stream, Buffer.from('\nendstream', 'latin1')];
  for (const id of pageIds) {
    objects[id] = `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>`;
  }
  const chunks: Buffer[] = [Buffer.from('%PDF-1.4\n', 'latin1')];
  let length = chunks[0]!.length;
  const push = (b: Buffer) => {
    chunks.push(b);
    length += b.length;
  };
  const offsets: number[] = [];
  for (let id = 1; id < objects.length; id++) {
    offsets[id] = length;
    const body = objects[id]!;
    push(Buffer.from(`${id} 0 obj\n`, 'latin1'));
    for (const part of typeof body === 'string' ? [Buffer.from(body, 'latin1')] : body) push(part);
    push(Buffer.from('\nendobj\n', 'latin1'));
  }
  const xrefAt = length;
  let tail = `xref\n0 ${objects.length}\n0000000000 65535 f \n`;
  for (let id = 1; id < objects.length; id++) tail += `${String(offsets[id]).padStart(10, '0')} 00000 n \n`;
  tail += `trailer\n<< /Size ${objects.length} /Root 1 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`;
  push(Buffer.from(tail, 'latin1'));
  return Buffer.concat(chunks);
}
