/**
 * `ReplyRequest.onText` per provider, against each protocol-faithful fake: the provider's own reasoning channels
 * (OpenAI `reasoning_content`, Ollama `thinking`, Coze reasoning / follow-ups / verbose, Dify agent thoughts) never
 * reach a snapshot, Dify's `message_replace` and workflow outputs rewrite it, and the last snapshot is the final
 * text after `stripReasoning`. The provider-neutral part (growing snapshots, split think tags) is in contract.test.ts.
 */
import axios from 'axios';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stripReasoning } from '../../src/format/reasoning.js';
import { createCozeAdapter } from '../../src/llm/coze.js';
import { createDifyAdapter } from '../../src/llm/dify.js';
import { createEchoAdapter } from '../../src/llm/echo.js';
import { createOllamaAdapter } from '../../src/llm/ollama.js';
import { createOpenAiAdapter } from '../../src/llm/openai.js';
import type { ReplyRequest } from '../../src/llm/types.js';
import { FOLLOWUPS, startFakeCoze, type FakeCoze } from '../fakes/coze.js';
import { startFakeDify, THOUGHT_MARKER, type FakeDify } from '../fakes/dify.js';
import { startFakeOllama, type FakeOllama } from '../fakes/ollama.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { COZE_BOT, COZE_TOKEN, DIFY_KEY, failure, never, OLLAMA_MODEL, OPENAI_KEY, OPENAI_MODEL, req, SYSTEM } from './contract-drivers.js';

const Q = '你们周末营业吗？';
const A = '您好！我们周末也营业，营业时间是 9:00-18:00。';
const THINK = '<think>THINK-SECRET 先查营业时间</think>\n\n';

/** A request whose onText snapshots land in `seen`. */
function watched(r: ReplyRequest = req(Q)): { req: ReplyRequest; seen: string[] } {
  const seen: string[] = [];
  return { req: { ...r, onText: (t) => void seen.push(t) }, seen };
}

/** Snapshots that only ever grow, contain none of `secrets`, and end with the final text after stripping. */
function expectGrowing(seen: string[], finalText: string, secrets: string[]): void {
  expect(seen.length).toBeGreaterThan(1);
  expect(seen.at(-1)).toBe(stripReasoning(finalText));
  for (const [i, t] of seen.entries()) {
    for (const s of secrets) expect(t).not.toContain(s);
    if (i > 0) expect(t.startsWith(seen[i - 1] ?? '')).toBe(true);
  }
}

describe('openai', () => {
  let fake: FakeOpenAI;
  beforeEach(async () => {
    fake = await startFakeOpenAI({ apiKey: OPENAI_KEY, model: OPENAI_MODEL });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = (http = axios.create({ baseURL: fake.baseUrl })) =>
    createOpenAiAdapter({ http, apiKey: OPENAI_KEY, model: OPENAI_MODEL, systemPrompt: SYSTEM });

  it('reasoning_content (DeepSeek) and a think block in the content never show; snapshots follow the content deltas', async () => {
    fake.script({ kind: 'answer', text: THINK + A, reasoning: 'REASONING-SECRET 用户问营业时间', chunkSize: 2 });
    const { req: r, seen } = watched();
    const result = await adapter().reply(r, never());
    expect(result.text).toBe(THINK + A);
    expectGrowing(seen, result.text, ['REASONING-SECRET', 'THINK-SECRET', '<']);
  });

  it('a server that ignores stream:true (one JSON document): one snapshot, the whole answer', async () => {
    const http = axios.create({ baseURL: fake.baseUrl });
    http.interceptors.request.use((c) => ({ ...c, data: { ...(c.data as object), stream: false } }));
    fake.script({ kind: 'answer', text: THINK + A });
    const { req: r, seen } = watched();
    await adapter(http).reply(r, never());
    expect(seen).toEqual([`\n\n${A}`]);
  });

  it('a stream that fails after some text: the snapshots shown were provisional, the call rejects with that text', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 2 });
    const { req: r, seen } = watched();
    const e = await failure(adapter().reply(r, never()));
    expect(seen.at(-1)).toBe(e.partialText);
  });
});

describe('ollama', () => {
  let fake: FakeOllama;
  beforeEach(async () => {
    fake = await startFakeOllama({ models: [OLLAMA_MODEL] });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('message.thinking never shows; snapshots follow message.content', async () => {
    fake.script({ kind: 'answer', text: A, thinking: 'THINKING-SECRET 用户在问营业时间', chunkSize: 3 });
    const { req: r, seen } = watched();
    const a = createOllamaAdapter({ http: axios.create({ baseURL: fake.baseUrl }), model: OLLAMA_MODEL, systemPrompt: SYSTEM });
    const result = await a.reply(r, never());
    expectGrowing(seen, result.text, ['THINKING-SECRET']);
    expect(seen.at(-1)).toBe(A);
  });
});

describe('coze', () => {
  let fake: FakeCoze;
  beforeEach(async () => {
    fake = await startFakeCoze({ token: COZE_TOKEN, botId: COZE_BOT });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = () => createCozeAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiToken: COZE_TOKEN, botId: COZE_BOT });

  it('reasoning_content, verbose and follow_up messages never show', async () => {
    fake.script({ kind: 'answer', text: A, reasoning: 'REASONING-SECRET 用户问营业时间', chunkSize: 3 });
    const { req: r, seen } = watched();
    const result = await adapter().reply(r, never());
    expectGrowing(seen, result.text, ['REASONING-SECRET', 'FOLLOWUP-SECRET', 'generate_answer_finish', ...FOLLOWUPS]);
    expect(seen.at(-1)).toBe(A);
  });

  it('several answer messages: the snapshot joins them with a blank line, as the final text does', async () => {
    const answers = ['第一段：营业时间 9:00-18:00。', '第二段：周末也营业。'];
    fake.script({ kind: 'answer', answers, chunkSize: 5 });
    const { req: r, seen } = watched();
    const result = await adapter().reply(r, never());
    expectGrowing(seen, result.text, ['FOLLOWUP-SECRET']);
    expect(seen.at(-1)).toBe(answers.join('\n\n'));
    expect(seen).toContain(`${answers[0]}\n\n第二段：周`);
  });
});

describe('dify', () => {
  let fake: FakeDify;
  beforeEach(async () => {
    fake = await startFakeDify({ apiKey: DIFY_KEY });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = (mode: 'chat' | 'workflow' = 'chat') =>
    createDifyAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiKey: DIFY_KEY, mode, outputKey: 'answer' });

  it('agent app: agent_thought text never shows; agent_message deltas do', async () => {
    fake.script({ kind: 'answer', variant: 'agent', text: A, chunkSize: 3 });
    const { req: r, seen } = watched();
    const result = await adapter().reply(r, never());
    expectGrowing(seen, result.text, [THOUGHT_MARKER]);
  });

  it('chatflow app with a think block in the answer: hidden, workflow/node frames add nothing', async () => {
    fake.script({ kind: 'answer', variant: 'chatflow', text: THINK + A, chunkSize: 3 });
    const { req: r, seen } = watched();
    const result = await adapter().reply(r, never());
    expectGrowing(seen, result.text, ['THINK-SECRET', 'think>']);
  });

  it('message_replace rewrites the snapshot: the last one is the replacement, not a continuation', async () => {
    const replaced = '抱歉，这个问题我无法回答。';
    fake.script({ kind: 'answer', text: '违规的原始回答', replaceWith: replaced, chunkSize: 2 });
    const { req: r, seen } = watched();
    const result = await adapter().reply(r, never());
    expect(result.text).toBe(replaced);
    expect(seen.slice(0, -1).every((t) => '违规的原始回答'.startsWith(t))).toBe(true);
    expect(seen.at(-1)).toBe(replaced);
  });

  it('workflow mode: text_chunk snapshots, then the chosen output as the last one', async () => {
    fake.script({ kind: 'workflow', text: '流式的中间文本', outputs: { answer: A }, chunkSize: 2 });
    const { req: r, seen } = watched();
    const result = await adapter('workflow').reply(r, never());
    expect(result.text).toBe(A);
    expect(seen.slice(0, -1).every((t) => '流式的中间文本'.startsWith(t))).toBe(true);
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toBe(A);
  });
});

describe('echo', () => {
  it('calls onText once with the whole text, reasoning stripped like the final text; not at all for nothing visible', async () => {
    const { req: r, seen } = watched(req(`${THINK}原话`));
    const result = await createEchoAdapter().reply(r, never());
    expect(result.text).toBe(`${THINK}原话`);
    expect(seen).toEqual(['\n\n原话']);
    const empty = watched(req(''));
    await createEchoAdapter().reply(empty.req, never());
    expect(empty.seen).toEqual([]);
  });
});
