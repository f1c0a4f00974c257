import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createMarkdownToText, markdownToText } from '../../src/format/markdown-to-text.js';

describe('markdownToText', () => {
  it.each([
    ['heading', '# 标题\n正文', '标题\n\n正文'],
    ['setext heading', '标题\n===\n\n正文', '标题\n\n正文'],
    ['bold, italic, strikethrough', '**粗体** *斜体* _也是_ ~~删除~~ ***都有***', '粗体 斜体 也是 删除 都有'],
    ['bold closed after CJK punctuation', '**注意：**请保留小票。', '注意：请保留小票。'],
    ['bullet list', '- 苹果\n- 香蕉\n* 橙子', '• 苹果\n• 香蕉\n\n• 橙子'],
    ['nested bullet list', '- a\n  - b\n    - c\n- d', '• a\n  • b\n    • c\n• d'],
    ['ordered list keeps its start', '3. 三\n4. 四\n5. 五', '3. 三\n4. 四\n5. 五'],
    ['ordered list numbers by position', '1. a\n1. b\n1. c', '1. a\n2. b\n3. c'],
    ['ordered list with ) marker', '7) a\n8) b', '7. a\n8. b'],
    ['loose list item with two paragraphs', '1. **标题**\n\n   说明文字\n\n2. 第二项', '1. 标题\n  说明文字\n2. 第二项'],
    ['nested ordered in bullet', '- 步骤\n  1. 一\n  2. 二', '• 步骤\n  1. 一\n  2. 二'],
    ['link', '见[官网](https://example.com/a?b=1)。', '见官网 (https://example.com/a?b=1)。'],
    ['link whose text is the url', '[https://example.com](https://example.com)', 'https://example.com'],
    ['autolink', '<https://example.com/x>', 'https://example.com/x'],
    ['mailto link', '[联系我们](mailto:help@example.com)', '联系我们 (help@example.com)'],
    ['email autolink', '<help@example.com>', 'help@example.com'],
    ['link with empty text', '[](https://example.com)', 'https://example.com'],
    ['link with non-ascii path is percent-encoded', '[文档](https://example.com/文档)', '文档 (https://example.com/%E6%96%87%E6%A1%A3)'],
    ['image', '![示意图](https://example.com/a.png)', '示意图 (https://example.com/a.png)'],
    ['image without alt', '![](https://example.com/a.png)', 'https://example.com/a.png'],
    ['inline code', '运行 `npm test` 即可', '运行 npm test 即可'],
    ['inline code keeps markdown literally', '`**x**` 和 `a_b_c`', '**x** 和 a_b_c'],
    ['fenced code', '代码：\n```js\nconst a = 1;\n  if (a) {}\n```\n完', '代码：\n\nconst a = 1;\n  if (a) {}\n\n完'],
    ['indented code', '文字\n\n    x = 1\n    y = 2\n\n完', '文字\n\nx = 1\ny = 2\n\n完'],
    ['fence keeps a single blank line, drops trailing spaces', '```\na  \n\n\n\nb\n```', 'a\n\nb'],
    ['blockquote', '> 第一行\n> 第二行\n>\n> 第二段', '｜第一行\n｜第二行\n｜\n｜第二段'],
    ['nested blockquote', '> a\n>> b', '｜a\n｜\n｜｜b'],
    ['table', '| 名称 | 价格 |\n|:--|--:|\n| **苹果** | `5` 元 |\n| 梨 |', '名称 | 价格\n苹果 | 5 元\n梨 |'],
    ['horizontal rule', '上\n\n---\n\n下', '上\n\n——————\n\n下'],
    ['raw html stays text', '<b>hi</b> <br>', '<b>hi</b> <br>'],
    ['hard and soft breaks', '一  \n二\\\n三\n四', '一\n二\n三\n四'],
    ['entities', '&amp; &lt;tag&gt; &copy; &#x4E2D;', '& <tag> © 中'],
    ['backslash escapes', '\\*不是斜体\\* \\# 不是标题', '*不是斜体* # 不是标题'],
    ['blank lines collapse', '一\n\n\n\n\n二', '一\n\n二'],
    ['empty input', '', ''],
    ['only whitespace', '  \n\n \n', ''],
  ])('%s', (_name, input, expected) => {
    expect(markdownToText(input)).toBe(expected);
  });

  it.each([
    '你好，请问有什么可以帮您？',
    'C# 和 5*3 的区别是什么？价格 ¥99，折扣 8.5 折！',
    '第一行\n第二行😀\n\n第二段：“引号”（括号）【书名】……',
    'a_b_c snake_case 以及 2 * 3 = 6',
    'https://example.com/path?q=1&x=2',
    '👨‍👩‍👧‍👦 🇨🇳 é',
  ])('passes text without markdown through unchanged: %s', (input) => {
    expect(markdownToText(input)).toBe(input);
  });

  it('converts a realistic Chinese LLM answer', () => {
    const answer = [
      '## 退货流程',
      '',
      '您好！关于**退货**，请按以下步骤操作：',
      '',
      '1. 打开*订单详情*页面',
      '2. 点击「申请退货」',
      '   - 选择退货原因',
      '   - 上传商品照片',
      '3. 等待审核，详见[退货政策](https://example.com/returns)',
      '',
      '查询物流可以调用接口：',
      '',
      '```bash',
      'curl "https://api.example.com/track?id=123"',
      '```',
      '',
      '| 商品状态 | 是否可退 |',
      '|---|---|',
      '| 未拆封 | 是 |',
      '| 已使用 | 否 |',
      '',
      '> 温馨提示：审核通常需要 **1-3 个工作日**。',
    ].join('\n');
    expect(markdownToText(answer)).toBe(
      [
        '退货流程',
        '',
        '您好！关于退货，请按以下步骤操作：',
        '',
        '1. 打开订单详情页面',
        '2. 点击「申请退货」',
        '  • 选择退货原因',
        '  • 上传商品照片',
        '3. 等待审核，详见退货政策 (https://example.com/returns)',
        '',
        '查询物流可以调用接口：',
        '',
        'curl "https://api.example.com/track?id=123"',
        '',
        '商品状态 | 是否可退',
        '未拆封 | 是',
        '已使用 | 否',
        '',
        '｜温馨提示：审核通常需要 1-3 个工作日。',
      ].join('\n'),
    );
  });

  it('gives independent converters the same results', () => {
    const convert = createMarkdownToText();
    expect(convert('# a\n\n**b**')).toBe('a\n\nb');
    expect(convert('# a\n\n**b**')).toBe(markdownToText('# a\n\n**b**'));
  });

  it('never leaves trailing whitespace or two blank lines in a row', () => {
    const pieces = ['# h', '- a', '  - b', '> q', '```', '    code', '', '  ', 'text  ', '| a | b |', '|-|-|', '1. x', '***'];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ unit: 'grapheme', maxLength: 8 }))), (lines) => {
        const out = markdownToText(lines.join('\n'));
        expect(out).not.toMatch(/[ \t]$/m);
        expect(out).not.toMatch(/\n\s*\n\s*\n/);
        expect(out).not.toMatch(/^\n|\n$/);
      }),
    );
  });
});
