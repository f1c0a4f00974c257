import http from 'node:http';
import https from 'node:https';
import axios from 'axios';
import type { AgentConfig } from '../config-agents.js';
import { createCozeAdapter } from './coze.js';
import { createDifyAdapter } from './dify.js';
import { createEchoAdapter } from './echo.js';
import { createOllamaAdapter } from './ollama.js';
import { createOpenAiAdapter } from './openai.js';
import type { LlmAdapter } from './types.js';
import { createWebhookAdapter } from './webhook.js';

/**
 * The adapter of one agent, with its own keep-alive connection pool (answers to one customer after another
 * reuse sockets to the same provider). The pool holds as many sockets as the agent may make calls at once
 * (`maxConcurrency`): a smaller pool would quietly queue calls the agent's limit allows, their deadline running.
 * Redirects are not followed (a 3xx is an error naming its status).
 */
export function createAdapter(agent: AgentConfig): LlmAdapter {
  const client = (baseURL: string) =>
    axios.create({
      baseURL,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: agent.maxConcurrency }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: agent.maxConcurrency }),
      // No redirects: an LLM API that answers 3xx is misconfigured (say so, with the status), and following one
      // would carry the request (and its key, same-host) somewhere not configured. Without them axios also skips
      // follow-redirects' wrapper around every request, the largest group of dictionary-mode objects in the heap of a
      // waiting conversation before.
      maxRedirects: 0,
    });
  switch (agent.provider) {
    case 'openai':
      return createOpenAiAdapter({ http: client(agent.baseUrl), ...agent, idleMs: agent.idleMs });
    case 'dify':
      return createDifyAdapter({ http: client(agent.baseUrl), ...agent });
    case 'coze':
      return createCozeAdapter({ http: client(agent.baseUrl), ...agent });
    case 'ollama':
      return createOllamaAdapter({ http: client(agent.baseUrl), ...agent });
    case 'echo':
      return createEchoAdapter();
    case 'webhook':
      // The URL is the base; the adapter posts to '' so its path and query stay exactly as configured.
      return createWebhookAdapter({ http: client(agent.url), token: agent.token, idleMs: agent.idleMs });
  }
}
