/**
 * Customer-content figures for `npm run bench`: the inputs of the security review (a 585-byte colspan page, its
 * 100-cell variant, a 400 KB PDF whose content stream inflates to 400 MiB, a 2,000-page PDF) and a 64 KB customer
 * text answered back as markdown, each run through the bridge's extraction pool (worker threads with time and
 * memory caps) from the event loop's side: wall time, the longest event-loop delay while it ran (the 10 ms
 * sampling interval included) and RSS growth. Target (docs/configuration.md "Cost of hostile input"): loop < 50 ms,
 * growth < 256 MiB.
 */
import { createExtractPool } from '../../src/media/extract-pool.js';
import { colspanPage, deflatedRun } from '../../test/media/hostile-corpus.js';
import { measureCost } from '../../test/media/cost-probe.js';
import { makePdf, makePdfWithContent } from '../../test/media/pdf-fixture.js';

/** One input's cost. */
export interface ExtractionRow {
  name: string;
  outcome: string;
  wallMs: number;
  loopMaxMs: number;
  rssGrowthMiB: number;
}

/** Runs each input once after a warm-up extraction (a running server's pool has its thread). */
export async function measureExtraction(): Promise<ExtractionRow[]> {
  const pool = createExtractPool();
  const rows: ExtractionRow[] = [];
  const run = async (name: string, work: () => Promise<string>) => {
    const c = await measureCost(async () => work().catch((e: unknown) => `refused (${(e as { reason?: string }).reason ?? (e as Error).message})`));
    rows.push({ name, outcome: c.value, wallMs: c.wallMs, loopMaxMs: c.loopMaxMs, rssGrowthMiB: c.rssGrowthMiB });
  };
  try {
    await pool.page(Buffer.from('<p>warm</p>'), 'text/html', 100);
    const bomb = makePdfWithContent(await deflatedRun(400), { filters: ['FlateDecode'] });
    const longPdf = makePdf(Array.from({ length: 2000 }, (_, i) => `page ${i + 1}`));
    await run('colspan page, 585 B', async () => `${(await pool.page(Buffer.from(colspanPage(30)), 'text/html', 4000)).text.length} chars`);
    await run('colspan page, 100 cells', async () => `${(await pool.page(Buffer.from(colspanPage(100)), 'text/html', 4000)).text.length} chars`);
    await run(`PDF bomb, ${Math.round(bomb.length / 1024)} KB → 400 MiB`, async () => `${(await pool.file(bomb, { filename: 'a.pdf', contentType: null, maxChars: 8000 })).text.length} chars`);
    await run('PDF, 2,000 pages', async () => `${(await pool.file(longPdf, { filename: 'b.pdf', contentType: null, maxChars: 8000 })).text.length} chars`);
    await run('64 KB of `![` as a markdown answer', async () => {
      const a = await pool.format({ text: '!['.repeat(32 * 1024), source: 'markdown', imageMarkers: true, maxBytes: 2048, maxParts: 5, hint: '…' });
      return `${a.parts.length} parts`;
    });
    return rows;
  } finally {
    await pool.close();
  }
}

/** Prints the table and the verdict against the targets. */
export function reportExtraction(rows: ExtractionRow[]): void {
  console.log('\ncustomer content (extraction pool; event loop as monitorEventLoopDelay sees it, 10 ms resolution):');
  for (const r of rows) {
    console.log(`${r.name.padEnd(36)} wall ${r.wallMs.toFixed(0).padStart(5)} ms  loop max ${r.loopMaxMs.toFixed(1).padStart(5)} ms  RSS +${r.rssGrowthMiB.toFixed(0)} MiB  ${r.outcome}`);
  }
  const loop = Math.max(...rows.map((r) => r.loopMaxMs));
  const rss = Math.max(...rows.map((r) => r.rssGrowthMiB));
  console.log(`worst event-loop delay ${loop.toFixed(1)} ms (target < 50: ${loop < 50 ? 'met' : 'NOT met'}), worst RSS growth ${rss.toFixed(0)} MiB (target < 256: ${rss < 256 ? 'met' : 'NOT met'})`);
}
