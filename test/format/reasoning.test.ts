import { describe, expect, it } from 'vitest';
import { stripReasoning } from '../../src/format/reasoning.js';

describe('stripReasoning', () => {
  it('drops leading think blocks (any case, <thinking> too) and keeps the answer', () => {
    expect(stripReasoning('<think>\n用户问营业时间，我应该……\n</think>\n\n我们 9 点开门。')).toBe('\n\n我们 9 点开门。');
    expect(stripReasoning('  <THINK>a</THINK><thinking>b</thinking>答案')).toBe('答案');
  });
  it('leaves answers without a leading think block alone (a later mention is content)', () => {
    expect(stripReasoning('答案里提到 <think> 标签')).toBe('答案里提到 <think> 标签');
    expect(stripReasoning('普通回答')).toBe('普通回答');
  });
  it('an unclosed think block is no answer at all (null)', () => {
    expect(stripReasoning('<think>想了很久，还没想完')).toBeNull();
  });
});
