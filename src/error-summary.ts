/**
 * An error as one compact log field: class name, message and the stable fields our errors carry (`api`, `errcode`,
 * `status`, `kind`, `code`), never a stack. Transient upstream failures are logged this way at warn level: a job
 * retried for an hour must not write pages of stack traces (a stack says where our code is, not what the
 * upstream did).
 */
export function errorSummary(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { message: String(e) };
  const out: Record<string, unknown> = { type: e.name, message: e.message };
  for (const field of ['api', 'errcode', 'status', 'kind', 'code'] as const) {
    const v = (e as unknown as Record<string, unknown>)[field];
    if (v !== undefined && v !== null) out[field] = v;
  }
  return out;
}
