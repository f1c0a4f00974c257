import type { ChatTurn } from '../llm/types.js';

/** A `/v1/chat/completions` request, checked. */
export interface ChatRequest {
  /** an agent name */
  model: string;
  /** the last user message: what the agent is asked */
  text: string;
  /** the turns before it (user and assistant, text only; system messages are the agent's own) */
  history: ChatTurn[];
  stream: boolean;
  /** the caller's end user ('' when absent): with the key, who the conversation belongs to */
  user: string;
  /** `stream_options.include_usage` */
  includeUsage: boolean;
}

/** Why a request body was refused: the `param` (OpenAI's error field) and the message. */
export class ChatRequestError extends Error {
  override readonly name = 'ChatRequestError';
  constructor(
    readonly param: string | null,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a chat completion body as OpenAI's API defines it: `model`, `messages` (roles `system`, `user`,
 * `assistant`, `tool`/`function`; content a string or an array of parts, of which the text parts are read),
 * optional `stream`, `user`, `stream_options`. Other fields (temperature, max_tokens …) are accepted and ignored:
 * the agent decides them.
 * @throws ChatRequestError for JSON that is not such a request (the route answers 400)
 */
export function parseChatRequest(raw: string): ChatRequest {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new ChatRequestError(null, 'the body is not valid JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ChatRequestError(null, 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || !b.model) throw new ChatRequestError('model', 'model is required (an agent name from GET /v1/models)');
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw new ChatRequestError('messages', 'messages must be a non-empty array');
  const turns: ChatTurn[] = [];
  for (const [i, m] of b.messages.entries()) {
    if (!m || typeof m !== 'object') throw new ChatRequestError(`messages[${i}]`, 'each message must be an object');
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string') throw new ChatRequestError(`messages[${i}].role`, 'role is required');
    if (role !== 'user' && role !== 'assistant') continue;
    turns.push({ role, content: textOf(content, i) });
  }
  const lastUser = turns.map((t) => t.role).lastIndexOf('user');
  if (lastUser === -1) throw new ChatRequestError('messages', 'messages must hold a user message');
  const options = b.stream_options as { include_usage?: unknown } | undefined;
  return {
    model: b.model,
    text: turns[lastUser]!.content,
    history: turns.slice(0, lastUser),
    stream: b.stream === true,
    user: typeof b.user === 'string' ? b.user.slice(0, 256) : '',
    includeUsage: options?.include_usage === true,
  };
}

/** A message's text: the string, or its text parts joined (image parts are not passed on). */
function textOf(content: unknown, i: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) throw new ChatRequestError(`messages[${i}].content`, 'content must be a string or an array of parts');
  return content
    .filter((p): p is { type: 'text'; text: string } => !!p && typeof p === 'object' && (p as { type?: unknown }).type === 'text' && typeof (p as { text?: unknown }).text === 'string')
    .map((p) => p.text)
    .join('\n');
}
