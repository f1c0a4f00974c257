import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

/** What the fake name server knows: per name, its A and AAAA answers, or `silent` to never answer. */
export type DnsTable = Record<string, { a?: string[]; aaaa?: string[]; silent?: boolean }>;

/** A DNS server over UDP on 127.0.0.1 that answers A/AAAA queries from a table (NXDOMAIN for unknown names). */
export interface FakeDns {
  /** `127.0.0.1:port`, for `Resolver.setServers` */
  server: string;
  /** every query received, e.g. `{ name: 'shop.test', type: 'A' }` */
  queries: Array<{ name: string; type: string }>;
  close(): Promise<void>;
}

const TYPES: Record<number, string> = { 1: 'A', 28: 'AAAA' };

export async function startFakeDns(table: DnsTable): Promise<FakeDns> {
  const socket = dgram.createSocket('udp4');
  const queries: FakeDns['queries'] = [];
  socket.on('message', (msg, rinfo) => {
    const q = parseQuestion(msg);
    if (!q) return;
    queries.push({ name: q.name, type: TYPES[q.qtype] ?? String(q.qtype) });
    const entry = table[q.name];
    if (entry?.silent) return;
    const addresses = !entry ? [] : q.qtype === 1 ? (entry.a ?? []) : q.qtype === 28 ? (entry.aaaa ?? []) : [];
    socket.send(answer(msg, q.end, entry ? 0 : 3, q.qtype, addresses), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  return { server: `127.0.0.1:${port}`, queries, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
}

/** The first question of a query: its name, type, and where the question section ends. */
function parseQuestion(msg: Buffer): { name: string; qtype: number; end: number } | null {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at]!;
    labels.push(msg.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return null;
  return { name: labels.join('.').toLowerCase(), qtype: msg.readUInt16BE(at + 1), end: at + 5 };
}

/** A response: the query's id and question, `rcode`, and one record per address (name as a pointer to the question). */
function answer(query: Buffer, questionEnd: number, rcode: number, qtype: number, addresses: string[]): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  header.writeUInt16BE(0x8180 | rcode, 2); // response, recursion desired and available
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const records = addresses.map((address) => {
    const rdata = qtype === 1 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
