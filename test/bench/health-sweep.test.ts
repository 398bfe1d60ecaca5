/** The healthSweep bench in smoke mode: API calls as the stub served them, every stale node deleted. */
import { z } from 'zod';
import { expectMeasured, runSmoke, sum } from './support';

const rowSchema = z.object({
  size: z.number().int().positive(),
  stale: z.number().int(),
  run: z.string(),
  ms: z.number(),
  calls: z.object({ compute: z.number().int(), consul: z.number().int(), monitoring: z.number().int() }),
  rss: z.number(),
  heap: z.number(),
  deleted: z.number().int(),
  reportOnly: z.string(),
  served: z.object({ pages: z.number(), gets: z.number(), lookups: z.number(), metrics: z.number() }),
});
const figuresSchema = z.object({ groups: z.number().int().positive(), rows: z.array(rowSchema) });

it('counts the calls its stub served and deletes every stale node', async () => {
  const f = await runSmoke('health-sweep', figuresSchema);
  const sizes = [...new Set(f.rows.map((r) => r.size))];
  expect(sizes.length).toBeGreaterThan(0);
  for (const size of sizes) {
    const rows = f.rows.filter((r) => r.size === size);
    expect(rows.map((r) => r.run)).toEqual(['first (cold clients)', 'second']);
    const { served, stale } = rows[0]!;
    expect(stale).toBeGreaterThan(0);
    for (const r of rows) {
      expectMeasured([r.ms], `sweep ${r.run}`);
      expect(r.rss).toBeGreaterThan(0);
      expect(r.heap).toBeGreaterThan(0);
      expect(r.calls.consul).toBeGreaterThan(0);
    }
    // The sweeps' own counts are what the stub saw: every list page, group get and lookup.
    expect(sum(rows.map((r) => r.calls.compute))).toBe(served.pages + served.gets + served.lookups);
    expect(sum(rows.map((r) => r.calls.monitoring))).toBe(served.metrics);
    // Each group's page, read on every sweep.
    expect(served.pages).toBeGreaterThanOrEqual(f.groups * rows.length);
    // Few stale nodes fit in one sweep's lookups and deletions; none is left for the second.
    expect(rows[0]!.deleted).toBe(stale);
    expect(rows[1]!.deleted).toBe(0);
  }
}, 180_000);
