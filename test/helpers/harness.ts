import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppDeps } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createDeps, type Deps, type DepsOverrides } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import { buildKfCallback, postCallback, startFakeWecom, type CallbackCreds, type FakeWecom } from '../fakes/wecom-kf.js';
import { redisEnv, uniquePrefix } from './redis.js';

/** Credentials shared by the tests, the fake and the server. Not real secrets. */
export const CREDS: CallbackCreds & { kfSecret: string } = {
  corpId: 'ww1234567890abcdef',
  kfSecret: 'test-kf-secret-0123456789',
  token: 'QDG6eK',
  encodingAesKey: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
};

export const OPEN_KFID = 'wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw';

/** The env a server needs to talk to `fake`. */
export function kfEnv(fake: FakeWecom, extra: Record<string, string> = {}): Record<string, string> {
  return {
    WECOM_CORP_ID: CREDS.corpId,
    WECOM_KF_SECRET: CREDS.kfSecret,
    WECOM_TOKEN: CREDS.token,
    WECOM_ENCODING_AES_KEY: CREDS.encodingAesKey,
    WECOM_API_BASE_URL: fake.url,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Log lines written by the app, parsed, for assertions (e.g. nothing secret was logged). */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      this.raw.push(line);
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not JSON: keep raw only
      }
    }
    cb();
  }
}

export interface Harness {
  url: string;
  fake: FakeWecom;
  config: Config;
  deps: Deps;
  app: FastifyInstance;
  logs: LogSink;
  /** Posts a real encrypted kf callback for `open_kfid` with a fresh sync Token. */
  callback(openKfid?: string): Promise<{ status: number; body: string; ms: number }>;
  /** Adds a customer text to the fake and posts its callback. @returns the inbound msgid */
  customerSays(user: string, content: string, openKfid?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * An in-process server (buildApp over a real socket on 127.0.0.1) wired to a fresh fake WeCom.
 * @param o.redis use the test Redis (true) or the test Redis Cluster ('cluster'), with a unique key prefix, instead of the memory store
 * @param o.pageSize the fake's sync_msg page size (default 1000)
 */
export async function startHarness(
  o: {
    env?: Record<string, string>;
    redis?: boolean | 'cluster';
    overrides?: DepsOverrides;
    appOverrides?: Partial<AppDeps>;
    fake?: FakeWecom;
    pageSize?: number;
  } = {},
): Promise<Harness> {
  const fake = o.fake ?? (await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret, pageSize: o.pageSize }));
  const env = kfEnv(fake, { ...redisEnv(o.redis), ...o.env });
  const config = loadConfig(env);
  const logs = new LogSink();
  const log = createLogger(config.logLevel, logs);
  const deps = await createDeps(config, log, {
    defaultMetrics: false,
    redisPrefix: uniquePrefix('h'),
    llmMinBackoffMs: 50,
    ...o.overrides,
  });
  const app = buildApp({ ...deps.app, ...o.appOverrides });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const callback = (openKfid = OPEN_KFID) =>
    postCallback(url, '/wecom/kf/callback', buildKfCallback(CREDS, { open_kfid: openKfid, syncToken: fake.issueSyncToken() }));
  return {
    url,
    fake,
    config,
    deps,
    app,
    logs,
    callback,
    customerSays: async (user, content, openKfid = OPEN_KFID) => {
      const msgid = fake.addCustomerText({ open_kfid: openKfid, external_userid: user, content });
      const res = await callback(openKfid);
      if (res.status !== 200) throw new Error(`callback answered ${res.status} ${res.body}`);
      return msgid;
    },
    close: async () => {
      await app.close();
      await deps.close(2000);
      if (!o.fake) await fake.close();
    },
  };
}

/** Texts the fake accepted for one customer, in order. */
export function textsTo(fake: FakeWecom, user: string): string[] {
  return fake.sent.filter((s) => s.touser === user).map((s) => s.content ?? '');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
