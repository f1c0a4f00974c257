import zlib from 'node:zlib';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { extractFileText, FileTextError } from '../../src/media/file-text.js';
import { makePdf, makePdfWithContent } from './pdf-fixture.js';

const reason = async (p: Promise<unknown>) => {
  const e = await p.catch((err: unknown) => err);
  expect(e).toBeInstanceOf(FileTextError);
  return (e as FileTextError).reason;
};

describe('extractFileText', () => {
  it('reads the text of a real PDF', async () => {
    const pdf = makePdf(['Invoice 2024-001', 'Total due: 42.00 (CNY)']);
    expect(pdf.subarray(0, 8).toString()).toBe('%PDF-1.4');
    const r = await extractFileText(pdf, { filename: 'invoice.pdf', contentType: 'application/pdf', maxChars: 1000 });
    expect(r).toEqual({ kind: 'pdf', text: 'Invoice 2024-001\n\nTotal due: 42.00 (CNY)', truncated: false, pages: 2 });
  });

  it('recognises a PDF by its bytes whatever its name, and caps text and pages', async () => {
    const pdf = makePdf(['first page text', 'second page text', 'third page text']);
    const capped = await extractFileText(pdf, { filename: 'scan.bin', contentType: null, maxChars: 20 });
    expect(capped).toEqual({ kind: 'pdf', text: 'first page text\n\nsec', truncated: true, pages: 3 });
    const onePage = await extractFileText(pdf, { filename: null, maxChars: 1000, maxPages: 1 });
    expect(onePage).toEqual({ kind: 'pdf', text: 'first page text', truncated: true, pages: 3 });
  });

  it('refuses a corrupt PDF as unreadable', async () => {
    expect(await reason(extractFileText(Buffer.from('this is not a pdf'), { filename: 'report.pdf', maxChars: 100 }))).toBe('unreadable');
    const truncated = makePdf(['hello']).subarray(0, 60);
    expect(await reason(extractFileText(truncated, { filename: 'x', contentType: 'application/pdf', maxChars: 100 }))).toBe('unreadable');
  });

  it('reads a Flate-compressed PDF, and refuses one whose streams inflate past maxInflatedBytes as too_large', async () => {
    const stream = Buffer.from(`BT /F1 12 Tf 72 720 Td (Compressed page) Tj ET ${' '.repeat(4000)}`, 'latin1');
    const pdf = makePdfWithContent(zlib.deflateSync(stream), { filters: ['FlateDecode'], pages: 2 });
    expect(await extractFileText(pdf, { filename: 'c.pdf', maxChars: 1000 })).toEqual({
      kind: 'pdf',
      text: 'Compressed page\n\nCompressed page',
      truncated: false,
      pages: 2,
    });
    expect(await reason(extractFileText(pdf, { filename: 'c.pdf', maxChars: 1000, maxInflatedBytes: 1000 }))).toBe('too_large');
  });

  it('reads a UTF-8 .txt file (CRLF normalised, BOM dropped)', async () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('订单号：123\r\nThanks 🙏\r\n')]);
    const r = await extractFileText(bytes, { filename: 'note.TXT', contentType: 'application/octet-stream', maxChars: 100 });
    expect(r).toEqual({ kind: 'text', text: '订单号：123\nThanks 🙏', truncated: false });
  });

  it('reads .md/.csv/.json and text/* content types, GB18030 when not UTF-8', async () => {
    expect((await extractFileText(Buffer.from('# Title'), { filename: 'a.md', maxChars: 100 })).text).toBe('# Title');
    expect((await extractFileText(Buffer.from('a,b\n1,2'), { filename: 'a.csv', maxChars: 100 })).text).toBe('a,b\n1,2');
    expect((await extractFileText(Buffer.from('{"a":1}'), { filename: null, contentType: 'application/json', maxChars: 100 })).kind).toBe('text');
    const gbk = iconv.encode('客户名单，张三，李四', 'gbk');
    expect((await extractFileText(gbk, { filename: null, contentType: 'text/plain', maxChars: 100 })).text).toBe('客户名单，张三，李四');
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('记事本', 'utf16le')]);
    expect((await extractFileText(utf16, { filename: 'notepad.txt', maxChars: 100 })).text).toBe('记事本');
  });

  it('caps text without splitting a surrogate pair', async () => {
    const r = await extractFileText(Buffer.from('ab🙏cd'), { filename: 'e.txt', maxChars: 3 });
    expect(r).toEqual({ kind: 'text', text: 'ab', truncated: true });
  });

  it('refuses other types as unsupported', async () => {
    const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]);
    expect(await reason(extractFileText(zip, { filename: 'contract.docx', contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', maxChars: 100 }))).toBe('unsupported');
    expect(await reason(extractFileText(Buffer.from([0xff, 0xd8, 0xff]), { filename: 'photo.jpg', contentType: 'image/jpeg', maxChars: 100 }))).toBe('unsupported');
    expect(await reason(extractFileText(Buffer.from('x'), { filename: null, contentType: null, maxChars: 100 }))).toBe('unsupported');
  });

  it('refuses binary data named as text as unreadable', async () => {
    expect(await reason(extractFileText(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00]), { filename: 'notes.txt', maxChars: 100 }))).toBe('unreadable');
  });
});
