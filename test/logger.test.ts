import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger('info', sink), lines };
}

describe('logger redaction', () => {
  it('never prints access_token, secrets, keys or Authorization, also inside axios-like error objects', () => {
    const { log, lines } = capture();
    log.info({ access_token: 'AT-1', secret: 'S-1', apiKey: 'K-1', token: 'T-1', encodingAesKey: 'E-1' }, 'flat');
    log.info({ req: { headers: { authorization: 'Bearer B-1' } } }, 'headers');
    log.error(
      {
        err: {
          message: 'boom',
          config: { url: '/cgi-bin/kf/send_msg?access_token=AT-2', params: { access_token: 'AT-3' }, headers: { Authorization: 'Bearer B-2' } },
          request: { path: '/cgi-bin/gettoken?corpsecret=S-2' },
          response: { config: { url: '?access_token=AT-4' } },
        },
      },
      'axios error',
    );
    const all = lines.join('\n');
    for (const secret of ['AT-1', 'S-1', 'K-1', 'T-1', 'E-1', 'B-1', 'AT-2', 'AT-3', 'B-2', 'S-2', 'AT-4']) {
      expect(all).not.toContain(secret);
    }
    expect(all).toContain('boom');
  });

});
