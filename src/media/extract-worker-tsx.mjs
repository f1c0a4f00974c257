/**
 * The extraction worker's entry when the bridge runs from its TypeScript sources (vitest, `tsx src/main.ts`); the
 * compiled `dist/` uses extract-worker.js directly and never loads this file (tsc does not copy it; tsx is a
 * devDependency). It loads tsx for our own `.ts` modules only, then unregisters it before any task runs: on
 * Node 22 tsx transforms in the importing thread (`module.registerHooks`) and keeps source maps, and the pdf.js
 * that file-text.ts imports on the first PDF would then cost this thread ~300 MB of heap instead of ~10 MB,
 * far past its `resourceLimits`.
 */
import { register } from 'tsx/esm/api';

const unregister = register();
const { default: extract } = await import('./extract-worker.ts');
await unregister();

export default extract;
