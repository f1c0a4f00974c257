/**
 * `npm run doctor [-- --no-env-file] [-- --skip-bot-connect]`: checks the configuration against the real world
 * (each channel's token, through WECHAT_API_PROXY when set; each agent; Redis; MySQL; the clock; the smart bots),
 * one line per check, exit code 1 when any failed. The command is src/doctor/cli.ts, the checks src/doctor/*.ts;
 * built, the same runs as `node dist/doctor/main.js` (the Docker image has no tsx).
 */
import '../src/doctor/main.js';
