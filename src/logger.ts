import { pino, type Logger, type LoggerOptions } from 'pino';

/**
 * Paths pino censors in every log line. Secrets must never reach a log: the kf secret, callback Token and
 * EncodingAESKey, API keys, `access_token` (also inside URLs and axios error objects) and Authorization headers.
 * Our own code never logs raw axios errors (they are translated at the edge), this list is the second line.
 */
export const REDACT_PATHS = [
  'access_token',
  '*.access_token',
  'accessToken',
  '*.accessToken',
  'secret',
  '*.secret',
  'corpsecret',
  '*.corpsecret',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'encodingAesKey',
  '*.encodingAesKey',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'req.headers.authorization',
  'err.config',
  '*.config.url',
  '*.config.params',
  '*.config.headers',
  'err.request',
  'err.response.config',
  // ioredis errors carry the failed command with its arguments (a cached access_token in a SET).
  'err.command.args',
  '*.command.args',
];

/**
 * Creates the process logger.
 * @param level pino level name
 * @param destination optional stream (tests pass one to read the lines back); stdout by default
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'wechat-ai-bridge' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

