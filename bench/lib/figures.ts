import { percentile, type LoadResult } from '../../infra-scripts/local/load';

/**
 * Every bench ends its output with one line `bench-figures <JSON>`: the figures it printed, for
 * scripts and for the smoke tests (test/bench/), which check them for impossible values. A stage
 * that never happened is `null` there (JSON has no NaN).
 */
export const figuresMarker = 'bench-figures ';

export function printFigures(figures: Record<string, unknown>): void {
  process.stdout.write(`${figuresMarker}${JSON.stringify(figures)}\n`);
}

/** The figures line of a bench's output, parsed; undefined when there is none. */
export function readFigures(output: string): unknown {
  const line = output
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(figuresMarker));
  return line === undefined ? undefined : (JSON.parse(line.slice(figuresMarker.length)) as unknown);
}

/** A load's counts for the figures line: the samples behind each figure, so a reader can add them up. */
export function loadFigures(r: LoadResult) {
  return {
    ok: r.ok,
    failed: r.failed,
    reasons: r.reasons,
    latencySamples: r.latencies.length,
    servedBy: r.servedBy,
    answers: r.answers.length,
    p50Ms: percentile(r.latencies, 50),
    p99Ms: percentile(r.latencies, 99),
    durationMs: r.durationMs,
  };
}
