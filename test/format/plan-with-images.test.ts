import { describe, expect, it } from 'vitest';
import { imageAsText, imageMarker, imagePartOf, markersToText, splitAtImages, stripMarkerChars } from '../../src/format/image-marker.js';
import { markdownToText } from '../../src/format/markdown-to-text.js';
import { planPartsWithImages } from '../../src/format/plan-with-images.js';
import { planParts, utf8Bytes } from '../../src/format/split.js';

const HINT = '（内容较长，回复“继续”查看剩余部分）';
const KF = { maxBytes: 2048, maxParts: 5, hint: HINT };
const img = (n: number) => imageMarker(`https://img.example.com/${n}.png`, `图${n}`);

describe('image markers', () => {
  it('markdown images become markers only when asked; otherwise "alt (url)"', () => {
    const md = '看图：\n\n![产品](https://x.cn/a.png)\n\n完';
    expect(markdownToText(md)).toBe('看图：\n\n产品 (https://x.cn/a.png)\n\n完');
    const marked = markdownToText(md, { imageMarkers: true });
    expect(splitAtImages(marked)).toEqual([
      { text: '看图：' },
      { image: { url: 'https://x.cn/a.png', alt: '产品' }, marker: imageMarker('https://x.cn/a.png', '产品') },
      { text: '完' },
    ]);
    expect(markersToText(marked)).toBe(markdownToText(md));
  });

  it('an LLM cannot forge a marker: the marker characters are stripped from its text first', () => {
    const forged = `\uE000https://evil.example/x.png\uE001x\uE002`;
    expect(stripMarkerChars(forged)).toBe('https://evil.example/x.pngx');
    expect(splitAtImages(markdownToText(forged, { imageMarkers: true })).some((p) => 'image' in p)).toBe(false);
  });

  it('only http(s) images of sane length become markers; a data: URL keeps just its alt text', () => {
    const dataUrl = `data:image/png;base64,${'A'.repeat(5000)}`;
    expect(markdownToText(`看：![图](${dataUrl})`, { imageMarkers: true })).toBe('看：图');
    expect(markdownToText(`![图](ftp://x.cn/a.png)`)).toBe('图');
    expect(markdownToText(`![图](https://x.cn/${'a'.repeat(1200)}.png)`)).toBe('图');
  });

  it('imagePartOf recognises a whole-part marker only', () => {
    expect(imagePartOf(img(1))).toEqual({ url: 'https://img.example.com/1.png', alt: '图1' });
    expect(imagePartOf(`前${img(1)}`)).toBeNull();
    expect(imageAsText({ url: 'u', alt: '' })).toBe('u');
  });
});

describe('planPartsWithImages', () => {
  it('text without images is planned exactly like planParts', () => {
    const text = Array.from({ length: 30 }, (_, i) => `第${i}段。${'很长的内容。'.repeat(40)}`).join('\n\n');
    expect(planPartsWithImages(text, KF)).toEqual(planParts(text, KF));
  });

  it('each image is a part of its own, in its place', () => {
    const plan = planPartsWithImages(`开头\n\n${img(1)}\n\n中间\n\n${img(2)}`, KF);
    expect(plan).toEqual({ parts: ['开头', img(1), '中间', img(2)], rest: null });
  });

  it('over budget: 4 parts, a fifth with the hint, the rest keeps the later images in place', () => {
    const text = ['一', img(1), '二', img(2), '三', img(3), '四'].join('\n\n');
    const plan = planPartsWithImages(text, KF);
    expect(plan.parts).toEqual(['一', img(1), '二', img(2), `三\n\n${HINT}`]);
    expect(plan.rest).toBe(`${img(3)}\n\n四`);
    expect(planPartsWithImages(plan.rest ?? '', KF)).toEqual({ parts: [img(3), '四'], rest: null });
  });

  it('when an image comes right after the fourth part, the fifth is the hint alone', () => {
    const text = ['一', '二'.repeat(1000), img(1), '三', img(2), '四'].join('\n\n');
    // 二… is 3,000 bytes: two parts, so the image is the fourth part and 三 takes the hint.
    expect(planPartsWithImages(text, KF).parts).toEqual(['一', '二'.repeat(682), '二'.repeat(318), img(1), `三\n\n${HINT}`]);
    // Four paragraphs of 1,800 bytes: four parts (two never share one), then the image.
    const paras = ['甲', '乙', '丙', '丁'].map((c) => c.repeat(600));
    const plan = planPartsWithImages([...paras, img(1), '五'].join('\n\n'), KF);
    expect(plan).toEqual({ parts: [...paras, HINT], rest: `${img(1)}\n\n五` });
  });

  it('long text before the images is cut to fit, the hinted part stays within the byte limit', () => {
    const long = '这是很长的一句话。'.repeat(900);
    const plan = planPartsWithImages(`${long}\n\n${img(1)}`, KF);
    expect(plan.parts).toHaveLength(5);
    expect(plan.parts.every((p) => utf8Bytes(p) <= 2048)).toBe(true);
    expect(plan.parts[4]?.endsWith(HINT)).toBe(true);
    expect(plan.rest?.endsWith(img(1))).toBe(true);
    const all = [...plan.parts.slice(0, 4), plan.parts[4]?.replace(HINT, ''), plan.rest?.replace(img(1), '')].join('');
    expect(all.replace(/\s/g, '')).toBe(long);
  });
});
