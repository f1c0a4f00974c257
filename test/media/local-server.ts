import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A test HTTP server on a loopback address that counts TCP connections and requests. */
export interface LocalServer {
  /** e.g. http://127.0.0.1:41234 */
  origin: string;
  port: number;
  /** TCP connections accepted (a refused fetch must leave this at 0) */
  connections: number;
  requests: Array<{ url: string; host: string | undefined }>;
  close(): Promise<void>;
}

export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host: '127.0.0.1' | '::1' = '127.0.0.1',
): Promise<LocalServer> {
  const server = http.createServer((req, res) => {
    state.requests.push({ url: req.url ?? '', host: req.headers.host });
    handler(req, res);
  });
  const state: LocalServer = {
    origin: '',
    port: 0,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('connection', () => {
    state.connections++;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  state.port = (server.address() as AddressInfo).port;
  state.origin = host === '::1' ? `http://[::1]:${state.port}` : `http://127.0.0.1:${state.port}`;
  return state;
}
