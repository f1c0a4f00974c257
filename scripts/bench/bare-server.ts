/**
 * The benchmark's yardstick: a bare Fastify route that reads the body the same way our callback route does (a
 * catch-all string parser) and answers `success`, in its own process like the real server. Prints its URL.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 65536 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.post('/bare', async (_req, reply) => reply.type('text/plain').send('success'));
await app.listen({ port: 0, host: '127.0.0.1' });
const addr = app.server.address();
process.send?.({ type: 'ready', url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` });
