/**
 * `.env.example` is what a newcomer copies to `.env`: it must load as it is (every value the schema accepts, the
 * defaults it shows equal the real ones), and its commented examples must be accepted once uncommented.
 */
import { readFileSync } from 'node:fs';
import dotenv from 'dotenv';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
const values = dotenv.parse(text);
/** `# NAME=value` lines: examples meant to be uncommented. */
const examples = Object.fromEntries([...text.matchAll(/^# ([A-Z][A-Z0-9_]*)=(.+)$/gm)].map((m) => [m[1]!, m[2]!]));

describe('.env.example', () => {
  it('loads as it is, and each value it shows is what the server uses when the variable is unset', () => {
    const shown = loadConfig(values);
    const defaults = loadConfig({});
    expect(shown.replies).toEqual(defaults.replies);
    expect(shown.keywords).toEqual(defaults.keywords);
    expect(shown.media).toEqual(defaults.media);
    expect([shown.port, shown.host, shown.maxBodyBytes, shown.callbackMaxSkewS, shown.rateLimitPerMin]).toEqual([
      defaults.port,
      defaults.host,
      defaults.maxBodyBytes,
      defaults.callbackMaxSkewS,
      defaults.rateLimitPerMin,
    ]);
  });

  it('its commented examples (AGENTS with every option shown, AGENT_ROUTES, WECOM_BOTS) are accepted once uncommented', () => {
    expect(Object.keys(examples).sort()).toEqual(['AGENTS', 'AGENT_ROUTES', 'WECOM_BOTS']);
    const c = loadConfig({ ...values, ...examples, WECHAT_MP_APP_ID: 'wx5823bf96d3bd56c7', WECHAT_MP_TOKEN: 't', WECHAT_MP_APP_SECRET: 's' });
    expect(c.agents.map((a) => a.name)).toEqual(['default', 'sales', 'support', 'mp']);
    expect(Object.values(c.routes).sort()).toEqual(['mp', 'sales', 'support']);
    expect(c.bots.map((b) => [b.botId, b.mode])).toEqual([
      ['aib_demo_callback', 'callback'],
      ['aib_demo_ws', 'websocket'],
    ]);
  });
});

describe('.env.example and docs/configuration.md', () => {
  it('lists every variable the configuration page documents, in one place a newcomer copies', () => {
    const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const documented = new Set([...docs.matchAll(/^\| `([A-Z][A-Z0-9_]*)`(?: \/ `([A-Z][A-Z0-9_]*)`)*/gm)].flatMap((m) => m.slice(1).filter(Boolean)));
    // Rows naming two variables (`A` / `B`) list both.
    for (const m of docs.matchAll(/^\| (`[A-Z][A-Z0-9_]*`(?: \/ `[A-Z][A-Z0-9_]*`)+)/gm)) for (const n of (m[1] ?? '').matchAll(/`([A-Z0-9_]+)`/g)) documented.add(n[1] ?? '');
    const listed = new Set([...text.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    expect(documented.size).toBeGreaterThan(60);
    expect([...documented].filter((n) => !listed.has(n))).toEqual([]);
  });
});
