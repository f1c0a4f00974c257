import { describe, expect, it } from 'vitest';
import { outboundMsgid } from '../../src/channels/wecom-kf/send.js';
import { createKeyedSerial } from '../../src/pipeline/keyed-serial.js';
import { jobId, orderKeyOf } from '../../src/pipeline/jobs.js';
import { matchesKeyword } from '../../src/pipeline/keywords.js';

describe('keywords (docs/configuration.md "Keywords")', () => {
  const reset = ['重置', 'reset', '重新开始'];
  it('matches after trimming ASCII and full-width space, ASCII case-insensitively', () => {
    expect(matchesKeyword('重置', reset)).toBe(true);
    expect(matchesKeyword('  重置\n', reset)).toBe(true);
    expect(matchesKeyword('\u3000重置\u3000', reset)).toBe(true);
    expect(matchesKeyword('RESET', reset)).toBe(true);
    expect(matchesKeyword(' ReSeT ', reset)).toBe(true);
  });
  it('does not strip punctuation, match substrings, or fold full-width letters', () => {
    expect(matchesKeyword('重置。', reset)).toBe(false);
    expect(matchesKeyword('请重置', reset)).toBe(false);
    expect(matchesKeyword('reset!', reset)).toBe(false);
    expect(matchesKeyword('ＲＥＳＥＴ', reset)).toBe(false);
    expect(matchesKeyword('', reset)).toBe(false);
    expect(matchesKeyword('   ', reset)).toBe(false);
  });
});

describe('outbound msgid (docs/configuration.md "Outbound msgid")', () => {
  const inbound = 'Mh7Lk2pQv9XcR4tYb8nWs1aZe6uIo3dFg5jHk0lPqR1s'; // 44 characters, as WeCom sends
  it('is at most 32 bytes of [0-9A-Za-z_-], deterministic, unique per part and per account', () => {
    const ids = [0, 1, 2, 3, 4].map((p) => outboundMsgid('wkA', inbound, p));
    for (const id of ids) expect(id).toMatch(/^[0-9A-Za-z_-]{1,32}$/);
    expect(new Set(ids).size).toBe(5);
    expect(outboundMsgid('wkA', inbound, 3)).toBe(ids[3]);
    expect(outboundMsgid('wkB', inbound, 0)).not.toBe(ids[0]);
    expect(outboundMsgid('wkA', `${inbound}x`, 0)).not.toBe(ids[0]);
    expect(outboundMsgid('wkA', inbound, 'w')).toMatch(/^[0-9A-Za-z_-]{24}_w$/);
    expect(ids).not.toContain(inbound);
  });
  it('refuses part labels that would break the format', () => {
    expect(() => outboundMsgid('wkA', inbound, 'a:b')).toThrow(RangeError);
    expect(() => outboundMsgid('wkA', inbound, '12345678')).toThrow(RangeError);
  });
});

describe('job ids', () => {
  it('carry the customer as the order key', () => {
    const id = jobId('kf', 'wkA', 'wmB', 'msg1');
    expect(id).toBe('kf:wkA:wmB:msg1');
    expect(orderKeyOf(id)).toBe('kf:wkA:wmB');
  });
});

describe('keyed serial', () => {
  it('runs one key in order and other keys in parallel; a failure does not block the key', async () => {
    const serial = createKeyedSerial();
    const events: string[] = [];
    const task = (name: string, ms: number, fail = false) => async () => {
      events.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([
      serial.run('a', task('a1', 40, true)),
      serial.run('a', task('a2', 5)),
      serial.run('b', task('b1', 5)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(events.indexOf('end a1')).toBeLessThan(events.indexOf('start a2'));
    expect(events.indexOf('end b1')).toBeLessThan(events.indexOf('end a1'));
    await new Promise((r) => setTimeout(r, 0));
    expect(serial.activeKeys).toBe(0);
  });
});
