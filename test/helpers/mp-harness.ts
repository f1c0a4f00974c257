import { expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppDeps } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createDeps, type Deps, type DepsOverrides } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import { startFakeMpApi, type FakeMpApi, type InteractionKind } from '../fakes/wechat-mp-api.js';
import {
  buildMpPush,
  deliverLikeWechat,
  openPassiveReply,
  type DeliveryResult,
  type MpCreds,
  type MpFields,
  type MpMode,
} from '../fakes/wechat-mp-push.js';
import { LogSink } from './harness.js';
import { redisEnv, uniquePrefix } from './redis.js';

/** The Official Account the tests play. Not real credentials. */
export const MP: MpCreds = {
  appId: 'wx5823bf96d3bd56c7',
  token: 'mpTestToken2026',
  encodingAesKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
  ghId: 'gh_3f2a1b0c9d8e',
};
export const MP_SECRET = 'test-mp-app-secret-0123456789';
export const MP_PATH = '/wechat/mp/callback';
export const MODES: MpMode[] = ['plaintext', 'compatible', 'safe'];

/** The env a server needs to serve MP against `api`. */
export function mpEnv(api: FakeMpApi, extra: Record<string, string> = {}): Record<string, string> {
  return {
    WECHAT_MP_APP_ID: MP.appId,
    WECHAT_MP_APP_SECRET: MP_SECRET,
    WECHAT_MP_TOKEN: MP.token,
    WECHAT_MP_ENCODING_AES_KEY: MP.encodingAesKey,
    WECHAT_MP_API_BASE_URL: api.url,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export interface MpHarness {
  /** the server configured with the EncodingAESKey: compatible and safe pushes (plaintext ones are refused) */
  url: string;
  /**
   * A second app on the same deps (store, queue, agents) whose account has no EncodingAESKey: plaintext mode.
   * With a key configured the bridge refuses plaintext pushes (a downgrade), so each mode has its own server.
   */
  plainUrl: string;
  /** `plainUrl` for plaintext, else `url` */
  urlFor(mode: MpMode): string;
  api: FakeMpApi;
  config: Config;
  deps: Deps;
  app: FastifyInstance;
  logs: LogSink;
  /**
   * Pushes `fields` like WeChat (deadline, up to 3 deliveries, re-signed per delivery) in `mode`, after telling the
   * API fake that the user interacted (opens the send window).
   */
  deliver(fields: MpFields, mode: MpMode, o?: { deadlineMs?: number; attempts?: number; kind?: InteractionKind }): Promise<DeliveryResult>;
  /** One plain POST of `fields` (no deadline); for route checks. */
  post(fields: MpFields, mode: MpMode): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

/**
 * An in-process server (buildApp on a real socket, 127.0.0.1) with only the OA channel, wired to a fresh fake
 * OA API.
 * @param o.redis use the test Redis (true) or the test Redis Cluster ('cluster'), with a unique key prefix, instead of the memory store
 */
export async function startMpHarness(
  o: { env?: Record<string, string>; redis?: boolean | 'cluster'; overrides?: DepsOverrides; appOverrides?: Partial<AppDeps>; deadlineMs?: number } = {},
): Promise<MpHarness> {
  const api = await startFakeMpApi({ appId: MP.appId, appSecret: MP_SECRET });
  const config = loadConfig(mpEnv(api, { ...redisEnv(o.redis), ...o.env }));
  const logs = new LogSink();
  const deps = await createDeps(config, createLogger(config.logLevel, logs), {
    defaultMetrics: false,
    redisPrefix: uniquePrefix('mp'),
    llmMinBackoffMs: 50,
    ...o.overrides,
  });
  const appDeps = { ...deps.app, ...o.appOverrides };
  const app = buildApp(appDeps);
  const url = await listen(app);
  const mpRoutes = appDeps.mp;
  const plainApp = mpRoutes ? buildApp({ ...appDeps, mp: { ...mpRoutes, secrets: { ...mpRoutes.secrets, aesKey: null } } }) : null;
  const plainUrl = plainApp ? await listen(plainApp) : url;
  const urlFor = (mode: MpMode) => (mode === 'plaintext' ? plainUrl : url);
  return {
    url,
    plainUrl,
    urlFor,
    api,
    config,
    deps,
    app,
    logs,
    deliver: (fields, mode, d = {}) => {
      api.userInteracted(String(fields.FromUserName), d.kind ?? 'message');
      return deliverLikeWechat(urlFor(mode), MP_PATH, () => buildMpPush(MP, mode, fields), {
        deadlineMs: d.deadlineMs ?? o.deadlineMs,
        attempts: d.attempts,
      });
    },
    post: async (fields, mode) => {
      const push = buildMpPush(MP, mode, fields);
      const res = await fetch(`${urlFor(mode)}${MP_PATH}?${push.query}`, { method: 'POST', body: push.body, headers: { 'content-type': 'text/xml' } });
      return { status: res.status, body: await res.text() };
    },
    close: async () => {
      await Promise.all([app.close(), plainApp?.close()]);
      await deps.close(2000);
      await api.close();
    },
  };
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

/**
 * The text of a passive reply, checked like WeChat would: the XML shape, and for an encrypted push the envelope,
 * a valid MsgSignature and the AppID (decrypted with the test's own reference implementation).
 */
export function passiveText(body: string, mode: MpMode, openid?: string): string {
  const r = openPassiveReply(MP, body, { encrypted: mode !== 'plaintext', openid });
  expect(r.signatureOk).toBe(true);
  expect(r.fields.MsgType).toBe('text');
  return r.fields.Content ?? '';
}

/** The answer that ended a delivery, as text ('success' for an ack), or throws when WeChat got no answer. */
export function answeredText(r: DeliveryResult, mode: MpMode, openid?: string): string {
  if (!r.answered) throw new Error(`no delivery was answered: ${JSON.stringify(r.attempts)}`);
  return r.answered.body === 'success' ? 'success' : passiveText(r.answered.body, mode, openid);
}
