/**
 * The doctor as a built entry point, for installs without tsx (the Docker image):
 * `node dist/doctor/main.js [--no-env-file] [--skip-bot-connect]`. `npm run doctor` runs the same through tsx.
 */
import { doctorCli } from './cli.js';

doctorCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`doctor: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
