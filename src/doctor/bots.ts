import { WSClient } from '@wecom/aibot-node-sdk';
import type { BotConfig } from '../config-bots.js';
import { fail, messageOf, pass, warn, type DoctorResult } from './types.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * One smart bot. Callback mode: the configuration already checked the Token and EncodingAESKey's form (WeCom's own
 * URL check when saving the callback proves they match). Long-connection mode: opens the WebSocket to
 * WECOM_BOT_WS_URL with `@wecom/aibot-node-sdk`, subscribes once and disconnects (`timeoutMs`, default 5 s).
 * Subscribing evicts a running server's connection of the same bot (it rests a minute before reconnecting): with
 * `connect: false` the long-connection bots are only listed.
 */
export async function checkBot(bot: BotConfig, o: { wsUrl: string; connect: boolean; timeoutMs?: number }): Promise<DoctorResult> {
  const name = `smart bot ${bot.botId} (${bot.mode === 'websocket' ? 'long connection' : 'callback'})`;
  if (bot.mode === 'callback') {
    return pass(name, 'Token and EncodingAESKey are well-formed; WeCom checks that they match when the callback URL is saved');
  }
  if (!o.connect) return warn(name, 'not subscribed (--skip-bot-connect)', 'run without --skip-bot-connect while no server holds this bot');
  const timeoutMs = o.timeoutMs ?? 5000;
  const client = new WSClient({ botId: bot.botId, secret: bot.secret, wsUrl: o.wsUrl, maxReconnectAttempts: 0, maxAuthFailureAttempts: 0, logger: quiet });
  const scrub = (s: string) => (bot.secret ? s.split(bot.secret).join('[redacted]') : s);
  try {
    return await new Promise<DoctorResult>((resolve) => {
      const timer = setTimeout(
        () => resolve(fail(name, `no subscribe answer from ${o.wsUrl} within ${timeoutMs} ms`, 'check WECOM_BOT_WS_URL and outbound access to it (wss, port 443)')),
        timeoutMs,
      );
      const done = (r: DoctorResult) => {
        clearTimeout(timer);
        resolve(r);
      };
      client.on('authenticated', () => done(pass(name, `subscribed at ${o.wsUrl}`)));
      client.on('error', (err: Error) => {
        const refused = /^Authentication failed: (.*?)(?: \(code: (-?\d+)\))?$/s.exec(err.message);
        if (refused) {
          done(
            fail(
              name,
              `WeCom refused the subscribe: errcode ${refused[2] ?? '?'} (${scrub(refused[1] ?? '')})`,
              'check the BotID and the long-connection Secret (the bot\'s API settings in the WeCom admin console) in WECOM_BOTS',
            ),
          );
        } else {
          done(fail(name, `cannot connect to ${o.wsUrl}: ${scrub(messageOf(err))}`, 'check WECOM_BOT_WS_URL and outbound access to it (wss, port 443)'));
        }
      });
      client.connect();
    });
  } finally {
    client.removeAllListeners();
    client.on('error', () => undefined);
    try {
      client.disconnect();
    } catch {
      /* already closed */
    }
  }
}
