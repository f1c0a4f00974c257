/**
 * A child process for the connection-cap test: opens `count` TCP connections to 127.0.0.1:`port`, keeps them open,
 * sends `{ opened }` over IPC once every one is connected (or failed), and holds them until killed.
 * argv: <port> <count>
 */
import net from 'node:net';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const sockets: net.Socket[] = [];
let settled = 0;
let opened = 0;

function openOne(): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      opened += 1;
      resolve();
    });
    s.once('error', () => resolve());
    s.on('close', () => undefined);
    sockets.push(s);
  });
}

// In batches, so the server's accept queue (backlog 511) is never the limit being measured.
for (let i = 0; i < count; i += 500) {
  await Promise.all(Array.from({ length: Math.min(500, count - i) }, () => openOne().then(() => void (settled += 1))));
}
process.send?.({ opened, settled });
setInterval(() => undefined, 60_000);
