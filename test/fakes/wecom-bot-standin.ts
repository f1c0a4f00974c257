/**
 * A trivially correct smart-bot callback server (our side of the protocol) built on the REFERENCE crypto, used only
 * by wecom-bot.test.ts to test the fake without our real server. New message → placeholder frame; each refresh
 * shows one more character of `answer` (default "abc") and finishes when it is complete; a repeated msgid gets the
 * first frame again; enter_chat → welcome text; feedback_event → empty body. `misbehave` breaks one rule on purpose.
 * Units: `timestamp` unix seconds.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { botDecrypt, botEncrypt, botSignature } from './wecom-bot-reference-crypto.js';

/** One deliberate protocol violation, or a transient failure. */
export type Misbehaviour =
  | 'wrong-nonce'
  | 'bad-signature'
  | 'extra-key'
  | 'receiveid'
  | 'ms-timestamp'
  | 'other-stream-id'
  | 'changes-after-finish'
  | 'refresh-500-once';

export interface StandIn {
  url: string;
  /** Every decrypted callback, in arrival order. */
  received: Array<Record<string, unknown>>;
  /** Mutable behaviour: `answer` revealed one character per refresh; `finish: false` never finishes. */
  config: { answer: string; finish: boolean; misbehave?: Misbehaviour };
  close(): Promise<void>;
}

export const PLACEHOLDER = '正在思考中…';

/** Starts the stand-in on 127.0.0.1 (random port) for the bot `botId`. */
export async function startStandIn(creds: { botId: string; token: string; encodingAesKey: string }): Promise<StandIn> {
  const { token, encodingAesKey } = creds;
  const config: StandIn['config'] = { answer: 'abc', finish: true };
  const received: StandIn['received'] = [];
  const streams = new Map<string, { shown: number }>();
  const byMsgid = new Map<string, string>();

  const frame = (id: string): object => {
    const st = streams.get(id);
    if (!st) return { msgtype: 'stream', stream: { id, finish: true, content: 'unknown stream' } };
    const done = config.finish && st.shown >= config.answer.length;
    const content = st.shown === 0 ? PLACEHOLDER : config.answer.slice(0, st.shown);
    return { msgtype: 'stream', stream: { id, finish: done, content } };
  };

  function reply(res: ServerResponse, nonce: string, inner: object | null): void {
    if (inner === null) return void res.writeHead(200).end();
    const m = config.misbehave;
    const encrypt = botEncrypt(encodingAesKey, JSON.stringify(inner), m === 'receiveid' ? 'ww_corp' : '');
    const timestamp = m === 'ms-timestamp' ? Date.now() : Math.floor(Date.now() / 1000);
    const sig = botSignature(token, String(timestamp), nonce, encrypt);
    const env: Record<string, unknown> = {
      encrypt,
      msgsignature: m === 'bad-signature' ? sig.replace(/^./, (c) => (c === '0' ? '1' : '0')) : sig,
      timestamp,
      nonce: m === 'wrong-nonce' ? `${nonce}0` : nonce,
    };
    if (m === 'extra-key') env.msg_signature = sig;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(env));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const u = new URL(req.url ?? '/', 'http://x');
    const q = (k: string): string => u.searchParams.get(k) ?? '';
    if (u.pathname !== `/wecom/bot/callback/${creds.botId}`) return void res.writeHead(404).end();
    let encrypt = q('echostr');
    if (req.method === 'POST') {
      try {
        encrypt = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { encrypt?: unknown }).encrypt ?? '');
      } catch {
        return void res.writeHead(400).end();
      }
    }
    if (botSignature(token, q('timestamp'), q('nonce'), encrypt) !== q('msg_signature')) return void res.writeHead(401).end();
    let plain: { plaintext: string; receiveid: string };
    try {
      plain = botDecrypt(encodingAesKey, encrypt);
    } catch {
      return void res.writeHead(400).end();
    }
    if (plain.receiveid !== '') return void res.writeHead(401).end();
    if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'text/plain' }).end(plain.plaintext);
    const msg = JSON.parse(plain.plaintext) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    received.push(msg);
    if (msg.msgtype === 'event') {
      return reply(res, q('nonce'), msg.event?.eventtype === 'enter_chat' ? { msgtype: 'text', text: { content: '欢迎' } } : null);
    }
    if (msg.msgtype === 'stream') {
      const id = String(msg.stream?.id);
      const st = streams.get(id);
      if (config.misbehave === 'refresh-500-once') {
        config.misbehave = undefined;
        return void res.writeHead(500).end('oops');
      }
      const wasDone = st !== undefined && config.finish && st.shown >= config.answer.length;
      if (st && !wasDone) st.shown += 1;
      if (config.misbehave === 'other-stream-id') return reply(res, q('nonce'), { msgtype: 'stream', stream: { id: `${id}x`, finish: false, content: 'x' } });
      if (config.misbehave === 'changes-after-finish' && wasDone) {
        return reply(res, q('nonce'), { msgtype: 'stream', stream: { id, finish: true, content: 'changed' } });
      }
      return reply(res, q('nonce'), frame(id));
    }
    const known = byMsgid.get(String(msg.msgid));
    const id = known ?? randomBytes(12).toString('hex');
    if (!known) {
      byMsgid.set(String(msg.msgid), id);
      streams.set(id, { shown: 0 });
    }
    reply(res, q('nonce'), { msgtype: 'stream', stream: { id, finish: false, content: PLACEHOLDER } });
  }

  const server = createServer((req, res) => void handle(req, res).catch(() => res.writeHead(500).end()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    config,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
