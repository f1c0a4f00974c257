import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, textsTo, type Harness } from '../helpers/harness.js';

describe('smoke', () => {
  let h: Harness;
  afterEach(async () => h?.close());
  it('answers a text with echo', async () => {
    h = await startHarness();
    await h.customerSays('wmUser1', '你好');
    await h.fake.waitFor(() => textsTo(h.fake, 'wmUser1').length === 1);
    expect(textsTo(h.fake, 'wmUser1')).toEqual(['你好']);
    console.log(h.logs.raw.join('\n'));
  });
});
