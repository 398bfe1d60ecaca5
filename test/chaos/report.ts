/** The failure suite's table: one row per fault, what it cost and whether the invariants held. */

export interface FaultRow {
  fault: string;
  /** Set when the fault could not run here; the other fields are then empty. */
  skipped?: string;
  get: { ok: number; failed: number };
  post: { ok: number; failed: number };
  /** From the injection until HAProxy last became correct; null: never correct again in time. */
  routingMs: number | null;
  catalogEqual: boolean;
  boundsOk: boolean;
  /** Audit entries published during the fault, and those still without a decision at its end. */
  events: { published: number; outstanding: number; lostAtSource: number };
  notes: string[];
}

/** Failures allowed per fault: GETs are retried by HAProxy and the frontend, POSTs are never replayed. */
export const budget = { getFailedRatio: 0.02, postFailedRatio: 0.1, routingMs: 120_000 };

export const withinBudget = (row: FaultRow): boolean =>
  row.get.failed <= Math.max(1, (row.get.ok + row.get.failed) * budget.getFailedRatio) &&
  row.post.failed <= Math.max(1, (row.post.ok + row.post.failed) * budget.postFailedRatio);

const pad = (cells: string[], widths: number[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');

/** Pure: the table as text, then the notes per fault. */
export function formatReport(rows: FaultRow[]): string {
  const header = [
    'fault',
    'GET failed',
    'POST failed',
    'routing ok after',
    'catalog = members',
    'bounds',
    'events (pub/outst/lost@src)',
  ];
  const body = rows.map((r) =>
    r.skipped
      ? [r.fault, 'skipped', '', '', '', '', '']
      : [
          r.fault,
          `${r.get.failed}/${r.get.ok + r.get.failed}`,
          `${r.post.failed}/${r.post.ok + r.post.failed}`,
          r.routingMs === null ? 'NOT CORRECT' : `${(r.routingMs / 1000).toFixed(1)} s`,
          r.catalogEqual ? 'yes' : 'NO',
          r.boundsOk ? 'ok' : 'VIOLATED',
          `${r.events.published}/${r.events.outstanding}/${r.events.lostAtSource}`,
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const lines = [
    pad(header, widths),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map((b) => pad(b, widths)),
  ];
  const notes = rows.flatMap((r) => [
    ...(r.skipped ? [`${r.fault}: skipped: ${r.skipped}`] : []),
    ...r.notes.map((n) => `${r.fault}: ${n}`),
  ]);
  return [
    ...lines,
    '',
    `budget per fault: GET failed ≤ ${budget.getFailedRatio * 100}%, POST failed ≤ ${budget.postFailedRatio * 100}% (at least 1 allowed), routing correct within ${budget.routingMs / 1000} s`,
    ...notes,
  ].join('\n');
}
