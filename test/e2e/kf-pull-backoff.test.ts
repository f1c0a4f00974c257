import { afterEach, describe, expect, it } from 'vitest';
import { sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';

/**
 * A kf account whose pulls keep failing (a configuration refusal such as 95000) is not hammered: sweeps skip it
 * with a doubling backoff, while a fresh callback still pulls at once; a success clears the backoff.
 */
describe('kf pull backoff', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('sweeps skip a failing account for a while; then retry; a callback pulls at once and the message is answered', async () => {
    h = await startHarness();
    const pulls = () => h.fake.calls.filter((c) => c.api === 'sync_msg').length;
    h.fake.failNext('sync_msg', 95000, 2);
    await h.customerSays('wmB', '你好');
    await h.fake.waitFor(() => pulls() === 1);
    await sleep(100);
    for (let i = 0; i < 5; i++) await h.deps.kfPuller!.sweep();
    await sleep(200);
    expect(pulls()).toBe(1);

    await sleep(900);
    await h.deps.kfPuller!.sweep();
    await h.fake.waitFor(() => pulls() === 2);
    await sleep(100);
    await h.deps.kfPuller!.sweep();
    await sleep(200);
    expect(pulls()).toBe(2);

    await h.callback();
    await h.fake.waitFor(() => h.fake.sent.length === 1);
    expect(textsTo(h.fake, 'wmB')).toEqual(['你好']);
  });
});
