import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/services.ts'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Two cores: integration files spawn servers and child processes; more workers only add contention.
    maxWorkers: 2,
    // The hostile-input fuzz test measures heap after forced GCs.
    execArgv: ['--expose-gc'],
  },
});
