/** HAProxy's stats CSV (`show stat` on the CLI socket, `;csv` on the stats page), keyed by column name. */
export interface StatsTable {
  /** The header's column names; empty when the answer is not stats CSV (e.g. "Unknown command"). */
  columns: string[];
  rows: Record<string, string>[];
}

/** Pure: the header is `# pxname,svname,...`; without it there are no columns and no rows. */
export function parseStatsCsv(csv: string): StatsTable {
  const [header, ...lines] = csv.split('\n').filter((l) => l.trim());
  if (!header?.startsWith('#')) return { columns: [], rows: [] };
  const columns = header.replace(/^#\s*/, '').split(',');
  const rows = lines.map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(columns.map((n, i) => [n, cells[i] ?? '']));
  });
  return { columns, rows };
}
