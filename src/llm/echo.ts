import type { LlmAdapter } from './types.js';

/**
 * The `echo` provider: answers a text message with exactly its text (docs/configuration.md "echo"). The demo and
 * black-box checks rely on it; it needs no network and keeps no state.
 */
export function createEchoAdapter(): LlmAdapter {
  return {
    provider: 'echo',
    answersInMarkdown: false,
    acceptsImages: false,
    reply: async (req) => ({ text: req.text, state: null, usage: null, finishReason: 'stop' }),
  };
}
