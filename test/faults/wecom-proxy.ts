/**
 * A pass-through HTTP proxy in front of the fake WeCom (test/fakes/wecom-kf.ts) that can answer HTTP 5xx, which
 * the fake itself cannot (its failNext answers HTTP 200 with an errcode). Two kinds of injected failure:
 *  - `before`: the request never reaches WeCom (nothing happened there);
 *  - `after`: WeCom carries it out (a send_msg is accepted and delivered, a sync_msg page is issued: errcode 0), but
 *    the bridge gets the 5xx instead of the answer — the case that tempts a client to deliver twice. A call that
 *    WeCom failed anyway (a scripted errcode) is passed through and the fault waits for the next one.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxiedApi = 'gettoken' | 'sync_msg' | 'send_msg';
export type InjectWhen = 'before' | 'after';

export interface WecomProxy {
  url: string;
  /** The next `times` calls of `api` get HTTP `status` (`before` or `after` the fake handled them). */
  failNext(api: ProxiedApi, status: number, times: number, when: InjectWhen): void;
  /** injected failures that were served */
  injected: Array<{ api: ProxiedApi; status: number; when: InjectWhen }>;
  close(): Promise<void>;
}

const API_BY_PATH: Record<string, ProxiedApi> = {
  '/cgi-bin/gettoken': 'gettoken',
  '/cgi-bin/kf/sync_msg': 'sync_msg',
  '/cgi-bin/kf/send_msg': 'send_msg',
};

function errcodeOf(body: Buffer): number | null {
  try {
    const v = JSON.parse(body.toString('utf8')) as { errcode?: unknown };
    return typeof v.errcode === 'number' ? v.errcode : null;
  } catch {
    return null;
  }
}

export async function startWecomProxy(upstreamUrl: string): Promise<WecomProxy> {
  const upstream = new URL(upstreamUrl);
  const queues = new Map<ProxiedApi, Array<{ status: number; when: InjectWhen }>>();
  const injected: WecomProxy['injected'] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

  const forward = (req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: upstream.host };
      delete headers.connection;
      const up = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const body = Buffer.concat(chunks);
    const api = API_BY_PATH[new URL(req.url ?? '/', 'http://x').pathname];
    const queue = api ? queues.get(api) : undefined;
    const fault = queue?.[0];
    const inject = () => {
      queue?.shift();
      injected.push({ api: api!, ...fault! });
      res.writeHead(fault!.status, { 'content-type': 'text/html' }).end(`<html><body>${fault!.status} injected</body></html>`);
    };
    if (fault?.when === 'before') return inject();
    const answer = await forward(req, body);
    // `after` hits only a call WeCom carried out (errcode 0); a call the fake failed anyway passes and it waits.
    if (fault?.when === 'after' && queue?.[0] === fault && errcodeOf(answer.body) === 0) return inject();
    const headers = { ...answer.headers };
    delete headers.connection;
    delete headers['transfer-encoding'];
    delete headers['keep-alive'];
    headers['content-length'] = String(answer.body.length);
    res.writeHead(answer.status, headers).end(answer.body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end('proxy error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    failNext: (api, status, times, when) => {
      const q = queues.get(api) ?? [];
      for (let i = 0; i < times; i++) q.push({ status, when });
      queues.set(api, q);
    },
    injected,
    close: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
