import { describe, expect, it } from 'vitest';
import { sniffImageType } from '../../src/media/image-type.js';

describe('sniffImageType', () => {
  it.each([
    [[0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46], 'image/jpeg', 'jpg'],
    [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d], 'image/png', 'png'],
    [[...Buffer.from('GIF89a'), 1, 0], 'image/gif', 'gif'],
    [[...Buffer.from('GIF87a')], 'image/gif', 'gif'],
    [[...Buffer.from('RIFF'), 0x24, 0, 0, 0, ...Buffer.from('WEBPVP8 ')], 'image/webp', 'webp'],
  ])('recognises %j', (bytes, mime, ext) => {
    expect(sniffImageType(Buffer.from(bytes))).toEqual({ mime, ext });
  });

  it.each([
    ['empty', []],
    ['truncated PNG', [0x89, 0x50, 0x4e, 0x47]],
    ['RIFF WAVE audio', [...Buffer.from('RIFF'), 0, 0, 0, 0, ...Buffer.from('WAVE')]],
    ['SVG', [...Buffer.from('<svg xmlns="http://www.w3.org/2000/svg">')]],
    ['PDF', [...Buffer.from('%PDF-1.4')]],
    ['HTML error page', [...Buffer.from('<!doctype html>')]],
  ])('returns null for %s', (_name, bytes) => {
    expect(sniffImageType(Buffer.from(bytes))).toBeNull();
  });
});
