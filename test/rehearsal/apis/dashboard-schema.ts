/**
 * A dashboard as the stand-in's dashboards API (v1) takes it: the deploy's own shape
 * (infra-scripts/deploy/dashboard-schema.ts), plus what only the server checks or adds. The server
 * refuses overlapping mosaic tiles
 * (https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards#MosaicLayout), and a
 * dashboard read back carries `name` and `etag`, which an update may send again.
 */
import { z } from 'zod';

import { dashboardSchema as deployShape } from '../../../infra-scripts/deploy/dashboard-schema';

type Tile = { xPos: number; yPos: number; width: number; height: number };

/** The first cell two tiles share, if any. */
function overlap(tiles: readonly Tile[]): string | undefined {
  const cells = new Set<string>();
  for (const t of tiles) {
    for (let x = t.xPos; x < t.xPos + t.width; x++) {
      for (let y = t.yPos; y < t.yPos + t.height; y++) {
        const key = `${x},${y}`;
        if (cells.has(key)) return key;
        cells.add(key);
      }
    }
  }
  return undefined;
}

export const dashboardSchema = deployShape
  .extend({ name: z.string().optional(), etag: z.string().optional() })
  .superRefine((d, ctx) => {
    const cell = overlap(d.mosaicLayout.tiles);
    if (cell !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['mosaicLayout', 'tiles'],
        message: `mosaic tiles must not overlap (cell ${cell} is in two)`,
      });
  });
