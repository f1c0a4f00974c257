import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PDF_MAX_STREAMS, scanPdfInflation } from '../../src/media/pdf-inflate-scan.js';
import { makePdf, makePdfWithContent } from './pdf-fixture.js';

const content = (text: string) => Buffer.from(`BT /F1 12 Tf 72 720 Td (${text}) Tj ET`, 'latin1');

describe('scanPdfInflation', () => {
  it('counts what the zlib streams of a PDF inflate to; unfiltered streams count nothing', () => {
    const stream = content('Hello');
    expect(scanPdfInflation(makePdfWithContent(zlib.deflateSync(stream), { filters: ['FlateDecode'] }))).toEqual({
      ok: true,
      inflated: stream.length,
      streams: 1,
    });
    expect(scanPdfInflation(makePdf(['plain', 'text']))).toEqual({ ok: true, inflated: 0, streams: 0 });
  });

  it('stops once the total passes the budget, without inflating the rest', () => {
    const pdf = makePdfWithContent(zlib.deflateSync(Buffer.alloc(2 * 1024 * 1024, 0x20)), { filters: ['FlateDecode'] });
    expect(scanPdfInflation(pdf, 1024 * 1024)).toMatchObject({ ok: false, inflated: 1024 * 1024 + 1 });
    expect(scanPdfInflation(pdf, 2 * 1024 * 1024).ok).toBe(true);
  });

  it('inflates Flate applied twice', () => {
    const twice = zlib.deflateSync(zlib.deflateSync(Buffer.alloc(4 * 1024 * 1024, 0x20)));
    expect(twice.length).toBeLessThan(1024);
    expect(scanPdfInflation(makePdfWithContent(twice, { filters: ['FlateDecode', 'FlateDecode'] }), 1024 * 1024).ok).toBe(false);
  });

  it('reads to the end of the zlib data, past a decoy endstream and a lying /Length', () => {
    const bomb = zlib.deflateSync(Buffer.alloc(2 * 1024 * 1024, 0x20), { level: 0 });
    // Stored (level 0) blocks keep the bytes readable: plant "endstream" inside the data.
    const at = bomb.indexOf(Buffer.from('     '), 100);
    bomb.write('endstream', at, 'latin1');
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n4 0 obj\n<< /Length 10 /Filter /FlateDecode >>\nstream\n'), bomb, Buffer.from('\nendstream\nendobj\n')]);
    expect(scanPdfInflation(pdf, 1024 * 1024).ok).toBe(false);
  });

  it(`refuses more than ${PDF_MAX_STREAMS} zlib streams (each costs a zlib handle)`, () => {
    const tiny = Buffer.concat([Buffer.from('stream\n'), zlib.deflateSync(Buffer.from('q')), Buffer.from('\nendstream\n')]);
    const many = Buffer.concat(Array.from({ length: PDF_MAX_STREAMS + 1 }, () => tiny));
    expect(scanPdfInflation(many)).toMatchObject({ ok: false, streams: PDF_MAX_STREAMS + 1 });
  });
});
