import type { TimeSeriesStore } from './monitoring';
import { type Aligner, type Comparison, invalid, ms, type PolicyInput } from './alerting-schemas';

/**
 * The threshold condition evaluator: per matching time series, the points of the last
 * `alignmentPeriod` aligned with `perSeriesAligner` (ALIGN_MEAN, _MAX, _MIN, _SUM, _COUNT;
 * cross-series reducers are not emulated), to compare with `thresholdValue`.
 */

type Threshold = PolicyInput['conditions'][number]['conditionThreshold'];

export interface AlignedSeries {
  /** Identifies the series across rounds: its metric and resource. */
  key: string;
  metric: { type: string; labels: Record<string, string> };
  resource: { type: string; labels: Record<string, string> };
  value: number;
  /** The end time of its newest point, in ms. */
  newest: number;
}

/** Filter terms `field = "value"`, joined by whitespace or AND, as alert conditions write them. */
export function normalizeFilter(filter: string): string {
  const term = /([a-z_]+(?:\.[A-Za-z_][\w-]*)+)\s*=\s*"([^"]*)"/g;
  const terms = [...filter.matchAll(term)].map((m) => `${m[1]}="${m[2]}"`);
  const rest = filter
    .replace(term, ' ')
    .replace(/\bAND\b/g, ' ')
    .trim();
  if (rest || !terms.length) throw invalid(`Unsupported filter: ${filter}`);
  if (!terms.some((t) => t.startsWith('metric.type=')))
    throw invalid('The filter of a metric threshold condition must name a metric.type.');
  return terms.join(' AND ');
}

export function align(values: number[], aligner: Aligner): number | undefined {
  if (!values.length) return aligner === 'ALIGN_COUNT' ? 0 : undefined;
  switch (aligner) {
    case 'ALIGN_MEAN':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'ALIGN_SUM':
      return values.reduce((a, b) => a + b, 0);
    case 'ALIGN_MAX':
      return Math.max(...values);
    case 'ALIGN_MIN':
      return Math.min(...values);
    case 'ALIGN_COUNT':
      return values.length;
  }
}

export function violates(value: number, comparison: Comparison, threshold: number): boolean {
  switch (comparison) {
    case 'COMPARISON_GT':
      return value > threshold;
    case 'COMPARISON_GE':
      return value >= threshold;
    case 'COMPARISON_LT':
      return value < threshold;
    case 'COMPARISON_LE':
      return value <= threshold;
    case 'COMPARISON_EQ':
      return value === threshold;
    case 'COMPARISON_NE':
      return value !== threshold;
  }
}

export function alignedSeries(store: TimeSeriesStore, c: Threshold, now: number) {
  const agg = c.aggregations?.[0];
  const periodMs = agg?.alignmentPeriod ?? 60_000;
  const aligner = (agg?.perSeriesAligner ?? 'ALIGN_MEAN') as Aligner;
  const { timeSeries } = store.list({
    filter: normalizeFilter(c.filter),
    startTime: ms(now - periodMs + 1),
    endTime: ms(now),
  });
  const keys = new Set<string>();
  const aligned: AlignedSeries[] = [];
  for (const ts of timeSeries) {
    const key = JSON.stringify([ts.metric, ts.resource]);
    keys.add(key);
    const values = ts.points
      .map((pt) => pt.value.doubleValue ?? Number(pt.value.int64Value ?? NaN))
      .filter(Number.isFinite);
    const value = align(values, aligner);
    if (value === undefined) continue;
    // "No data for autoClose" counts from the newest point, not from this round.
    const newest = Math.max(...ts.points.map((pt) => Date.parse(pt.interval.endTime)));
    aligned.push({ key, metric: ts.metric, resource: ts.resource, value, newest });
  }
  return { keys, aligned };
}

export const isViolated = (c: Threshold, value: number) =>
  violates(value, c.comparison as Comparison, c.thresholdValue);
