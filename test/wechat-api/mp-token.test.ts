import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WechatApiError } from '../../src/errors.js';
import { createApiHttp } from '../../src/wechat-api/http.js';
import { fetchStableToken } from '../../src/wechat-api/mp-token.js';
import { startFakeMpApi, type FakeMpApi } from '../fakes/wechat-mp-api.js';

const APP_ID = 'wx5823bf96d3bd56c7';
const SECRET = 'mp-token-test-secret';

describe('fetchStableToken (docs/protocols.md OA §7)', () => {
  let api: FakeMpApi | null = null;
  let relay: http.Server | null = null;
  afterEach(async () => {
    await api?.close();
    await new Promise((r) => (relay ? relay.close(r) : r(null)));
    api = null;
    relay = null;
  });

  it('POSTs grant_type/appid/secret/force_refresh and gets the same current token until forced', async () => {
    api = await startFakeMpApi({ appId: APP_ID, appSecret: SECRET });
    const httpClient = createApiHttp(api.url);
    const a = await fetchStableToken(httpClient, APP_ID, SECRET, false);
    const b = await fetchStableToken(httpClient, APP_ID, SECRET, false);
    expect(b.access_token).toBe(a.access_token);
    expect(a.expires_in).toBe(7200);
    const c = await fetchStableToken(httpClient, APP_ID, SECRET, true);
    expect(c.access_token).not.toBe(a.access_token);
    expect(api.calls.filter((x) => x.api === 'stable_token').map((x) => x.body)).toEqual([
      { grant_type: 'client_credential', appid: APP_ID, secret: SECRET, force_refresh: false },
      { grant_type: 'client_credential', appid: APP_ID, secret: SECRET, force_refresh: false },
      { grant_type: 'client_credential', appid: APP_ID, secret: SECRET, force_refresh: true },
    ]);
  });

  it('a wrong secret is a WechatApiError that names no secret', async () => {
    api = await startFakeMpApi({ appId: APP_ID, appSecret: SECRET });
    const err = await fetchStableToken(createApiHttp(api.url), APP_ID, 'wrong-secret', false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WechatApiError);
    expect((err as WechatApiError).errcode).toBe(40001);
    expect(String((err as Error).message)).not.toContain('wrong-secret');
  });

  it('an origin without stable_token (404, e.g. a relay) gets the classic GET /cgi-bin/token', async () => {
    const seen: string[] = [];
    relay = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url?.split('?')[0]}`);
      if (req.method === 'GET' && req.url?.startsWith('/cgi-bin/token?')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ access_token: 'CLASSIC-1', expires_in: 7200 }));
        return;
      }
      res.statusCode = 404;
      res.end('not found');
    });
    await new Promise<void>((r) => relay!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    expect(await fetchStableToken(createApiHttp(url), APP_ID, SECRET, false)).toEqual({ access_token: 'CLASSIC-1', expires_in: 7200 });
    expect(seen).toEqual(['POST /cgi-bin/stable_token', 'GET /cgi-bin/token']);
  });
});
