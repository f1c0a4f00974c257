/**
 * The file the extraction worker starts at. Under vitest or tsx this code runs from its TypeScript sources
 * (`import.meta.url` ends in `.ts`): the worker then starts at extract-worker-tsx.mjs, which loads the `.ts` worker
 * through tsx (a devDependency) and unregisters tsx again. From the compiled `dist/` it is plain
 * extract-worker.js, which needs nothing; tsx is not installed in production.
 * @param moduleUrl `import.meta.url` of a module beside the worker files
 * @returns a file: URL
 */
export function extractWorkerFile(moduleUrl: string): string {
  return new URL(moduleUrl.endsWith('.ts') ? './extract-worker-tsx.mjs' : './extract-worker.js', moduleUrl).href;
}
