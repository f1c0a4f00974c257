import { z } from 'zod';
import { parseJsonObjectSetting } from './json-setting.js';

/** One smart bot in callback URL mode: WeCom POSTs to `/wecom/bot/callback/<botId>` (JSON WXBizMsgCrypt). */
export interface CallbackBotConfig {
  mode: 'callback';
  /** the BotID (`aibotid`) */
  botId: string;
  token: string;
  /** 43 characters */
  encodingAesKey: string;
  /** the `enter_chat` welcome; null: the routed agent's welcome, else WELCOME_MESSAGE */
  welcome: string | null;
}

/** One smart bot in long-connection mode: the bridge dials WECOM_BOT_WS_URL (no public URL needed). */
export interface WebsocketBotConfig {
  mode: 'websocket';
  botId: string;
  /** the long-connection Secret shown in the bot's API settings */
  secret: string;
  welcome: string | null;
}

export type BotConfig = CallbackBotConfig | WebsocketBotConfig;

/** Ids WeCom gives bots are letters, digits, `-` and `_`; a `:` would break customer keys and job ids. */
const BOT_ID = /^[A-Za-z0-9_-]{1,128}$/;

const welcome = z.string().trim().min(1, 'welcome must be non-empty when set').optional();
const callbackEntry = z
  .object({
    mode: z.literal('callback').optional(),
    token: z.string().trim().min(1, 'token is required (the Token of the bot\'s callback URL settings)'),
    encodingAesKey: z.string().trim().regex(/^[A-Za-z0-9]{43}$/, 'encodingAesKey must be the 43-character EncodingAESKey'),
    welcome,
  })
  .strict();
const websocketEntry = z
  .object({
    mode: z.literal('websocket'),
    secret: z.string().trim().min(1, 'secret is required (the long-connection Secret)'),
    welcome,
  })
  .strict();

/**
 * Parses `WECOM_BOTS` (docs/configuration.md): a JSON object from BotID to
 * `{"token","encodingAesKey"}` (callback URL mode) or `{"mode":"websocket","secret"}` (long connection), each with
 * an optional `welcome`. Problems name the bot and the field, never a secret value.
 * @returns the bots in their JSON order (none when unset) and the problems found
 */
export function parseBots(raw: string | undefined): { bots: BotConfig[]; problems: string[] } {
  if (raw === undefined || raw.trim() === '') return { bots: [], problems: [] };
  const parsed = parseJsonObjectSetting('WECOM_BOTS', raw, '{"<BotID>":{"token":"…","encodingAesKey":"…"}} or {"<BotID>":{"mode":"websocket","secret":"…"}}');
  if ('problem' in parsed) return { bots: [], problems: [parsed.problem] };
  const bots: BotConfig[] = [];
  const problems: string[] = [];
  for (const [botId, entry] of parsed.entries) {
    const where = `WECOM_BOTS[${JSON.stringify(botId.slice(0, 80))}]`;
    if (!BOT_ID.test(botId)) {
      problems.push(`${where}: the key must be the BotID (letters, digits, - and _)`);
      continue;
    }
    const isWs = !!entry && typeof entry === 'object' && (entry as { mode?: unknown }).mode === 'websocket';
    const result = isWs ? websocketEntry.safeParse(entry) : callbackEntry.safeParse(entry);
    if (!result.success) {
      for (const issue of result.error.issues) problems.push(`${where}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
      continue;
    }
    const d = result.data;
    bots.push(
      'secret' in d
        ? { mode: 'websocket', botId, secret: d.secret, welcome: d.welcome ?? null }
        : { mode: 'callback', botId, token: d.token, encodingAesKey: d.encodingAesKey, welcome: d.welcome ?? null },
    );
  }
  return { bots, problems };
}
