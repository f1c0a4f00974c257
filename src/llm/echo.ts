import type { LlmAdapter } from './types.js';
import { trackVisibleText } from './visible-text.js';

/**
 * The `echo` provider: answers a text message with exactly its text (docs/configuration.md "echo"). The demo and
 * black-box checks rely on it; it needs no network and keeps no state. `onText` is called once with the whole
 * (visible) text; `history` and `customer` are ignored.
 */
export function createEchoAdapter(): LlmAdapter {
  return {
    provider: 'echo',
    answersInMarkdown: false,
    acceptsImages: false,
    reply: async (req) => {
      trackVisibleText(req.onText).finish(req.text);
      return { text: req.text, state: null, usage: null, finishReason: 'stop' };
    },
  };
}
