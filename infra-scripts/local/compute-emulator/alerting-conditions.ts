import {
  type Aligner,
  type Comparison,
  invalid,
  ms,
  type PolicyInput,
  type Reducer,
  type ResourceMetadata,
} from './alerting-schemas';

/**
 * The threshold condition evaluator, as Monitoring applies an Aggregation
 * (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#Aggregation):
 * each matching time series is aligned first (its points of the last `alignmentPeriod` with
 * `perSeriesAligner`: ALIGN_MEAN, _MAX, _MIN, _SUM, _COUNT), then, with a `crossSeriesReducer`
 * (REDUCE_MEAN, _MAX, _MIN, _SUM, _COUNT), the aligned series are partitioned by the values of
 * `groupByFields` (resource.type implicitly) and each subset reduced to one series; "fields not
 * specified in groupByFields are aggregated away". Each resulting series is compared with
 * `thresholdValue`, and each is one incident.
 */

type Threshold = NonNullable<PolicyInput['conditions'][number]['conditionThreshold']>;
/** What alignment reads of a condition, threshold or absence. */
type Aggregated = Pick<Threshold, 'filter' | 'aggregations'>;
type Labels = Record<string, string>;
type Resource = { type: string; labels: Labels };

/** A stored time series, as `projects.timeSeries.list` returns it. */
export interface SeriesData {
  metric: { type: string; labels: Labels };
  resource: Resource;
  points: {
    interval: { endTime: string };
    value: { doubleValue?: number; int64Value?: string | number; boolValue?: boolean };
  }[];
}

/** Where the evaluator reads series: the emulator's store, or anything that lists the same way. */
export interface SeriesSource {
  list(q: { filter: string; startTime: string; endTime: string }): { timeSeries: SeriesData[] };
}

/** Monitoring's metadata of a monitored resource (a VM's labels are its `user_labels`). */
export type MetadataOf = (resource: Resource) => Partial<ResourceMetadata> | undefined;

export interface AlignedSeries {
  /** Identifies the series across rounds: its metric and resource (after reduction, its group). */
  key: string;
  metric: { type: string; labels: Labels };
  resource: Resource;
  metadata: ResourceMetadata;
  value: number;
  /** The end time of its newest point, in ms. */
  newest: number;
}

/** One `field = "value"` term; `field` without quotes, `label.` written `labels.`. */
interface Term {
  field: string;
  value: string;
}

const fieldPattern = /([a-z_]+(?:\.(?:[A-Za-z_][\w-]*|"[^"]+"))+)\s*=\s*"([^"]*)"/g;

/** `resource.label."zone"` and `resource.labels.zone` are the same field. */
function canonicalField(raw: string): string | undefined {
  const f = raw.replace(/\."([^"]+)"/g, '.$1').replace(/^(resource|metric)\.label\./, '$1.labels.');
  if (f === 'metric.type' || f === 'resource.type') return f;
  return /^((resource|metric)\.labels|metadata\.(user|system)_labels)\.[^.]+$/.test(f) ? f : undefined;
}

/** Filter terms `field = "value"`, joined by whitespace or AND, as alert conditions write them. */
function filterTerms(filter: string): Term[] {
  const found = [...filter.matchAll(fieldPattern)];
  const rest = filter
    .replace(fieldPattern, ' ')
    .replace(/\bAND\b/g, ' ')
    .trim();
  if (rest || !found.length) throw invalid(`Unsupported filter: ${filter}`);
  const terms = found.map((m) => {
    const field = canonicalField(m[1]!);
    if (!field) throw invalid(`Unsupported filter field: ${m[1]}`);
    return { field, value: m[2]! };
  });
  if (!terms.some((t) => t.field === 'metric.type'))
    throw invalid('The filter of a metric threshold condition must name a metric.type.');
  return terms;
}

/** The filter's terms as one canonical string; throws 400 for what the emulator cannot evaluate. */
export function normalizeFilter(filter: string): string {
  return filterTerms(filter)
    .map((t) => `${t.field}="${t.value}"`)
    .join(' AND ');
}

/** The value of a field (filter term or groupBy entry) for one series, if it has one. */
function fieldValue(
  s: { metric: SeriesData['metric']; resource: Resource; metadata: ResourceMetadata },
  field: string,
) {
  const [head, kind, key] = field.split('.') as [string, string, string | undefined];
  if (kind === 'type') return head === 'metric' ? s.metric.type : s.resource.type;
  const labels =
    head === 'metric'
      ? s.metric.labels
      : head === 'resource'
        ? s.resource.labels
        : kind === 'user_labels'
          ? s.metadata.user_labels
          : s.metadata.system_labels;
  return key !== undefined && Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : undefined;
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

const alignerOf = {
  REDUCE_MEAN: 'ALIGN_MEAN',
  REDUCE_MAX: 'ALIGN_MAX',
  REDUCE_MIN: 'ALIGN_MIN',
  REDUCE_SUM: 'ALIGN_SUM',
  REDUCE_COUNT: 'ALIGN_COUNT',
} as const;

/** A cross-series reducer over the aligned values of one group (REDUCE_COUNT: how many there are). */
export function reduce(values: number[], reducer: Exclude<Reducer, 'REDUCE_NONE'>): number {
  return align(values, alignerOf[reducer]) ?? 0;
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

const withMetadata = (m: Partial<ResourceMetadata> | undefined): ResourceMetadata => ({
  user_labels: { ...(m?.user_labels ?? {}) },
  system_labels: { ...(m?.system_labels ?? {}) },
});

/** The matching series of the last `windowMs` (by default the alignment period), each aligned to one value. */
function alignEach(
  source: SeriesSource,
  c: Aggregated,
  now: number,
  metadataOf: MetadataOf | undefined,
  windowMs: number | undefined,
) {
  const agg = c.aggregations?.[0];
  const periodMs = windowMs ?? agg?.alignmentPeriod ?? 60_000;
  const aligner = (agg?.perSeriesAligner ?? 'ALIGN_MEAN') as Aligner;
  const terms = filterTerms(c.filter);
  const metricType = terms.find((t) => t.field === 'metric.type')!.value;
  // The source is asked for the metric alone: metadata terms are Monitoring's join, not the store's.
  const { timeSeries } = source.list({
    filter: `metric.type="${metricType}"`,
    startTime: ms(now - periodMs + 1),
    endTime: ms(now),
  });
  const aligned: AlignedSeries[] = [];
  for (const ts of timeSeries) {
    const s = { metric: ts.metric, resource: ts.resource, metadata: withMetadata(metadataOf?.(ts.resource)) };
    if (!terms.every((t) => fieldValue(s, t.field) === t.value)) continue;
    const values = ts.points
      .map((pt) => pt.value.doubleValue ?? Number(pt.value.int64Value ?? NaN))
      .filter(Number.isFinite);
    const value = align(values, aligner);
    if (value === undefined) continue;
    // "No data for autoClose" counts from the newest point, not from this round.
    const newest = Math.max(...ts.points.map((pt) => Date.parse(pt.interval.endTime)));
    aligned.push({ key: JSON.stringify([ts.metric, ts.resource]), ...s, value, newest });
  }
  return aligned;
}

/**
 * One series per group of `groupByFields` values: only those fields stay (and resource.type,
 * metric.type, and the project the series are stored in: `resource.labels.project_id`).
 */
function reduceGroups(aligned: AlignedSeries[], reducer: Exclude<Reducer, 'REDUCE_NONE'>, by: string[]) {
  const fields = by.map((f) => canonicalField(f)!);
  const groups = new Map<string, AlignedSeries[]>();
  for (const s of aligned) {
    const key = JSON.stringify([s.metric.type, s.resource.type, fields.map((f) => fieldValue(s, f) ?? null)]);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return [...groups].map(([key, members]): AlignedSeries => {
    const first = members[0]!;
    const kept = (head: string) =>
      Object.fromEntries(
        fields.flatMap((f) => {
          const [h, kind, k] = f.split('.');
          const v = fieldValue(first, f);
          return `${h}.${kind}` === head && k !== undefined && v !== undefined ? [[k, v]] : [];
        }),
      );
    const project = first.resource.labels.project_id;
    return {
      key,
      metric: { type: first.metric.type, labels: kept('metric.labels') },
      resource: {
        type: first.resource.type,
        labels: { ...(project !== undefined ? { project_id: project } : {}), ...kept('resource.labels') },
      },
      metadata: { user_labels: kept('metadata.user_labels'), system_labels: kept('metadata.system_labels') },
      value: reduce(
        members.map((m) => m.value),
        reducer,
      ),
      newest: Math.max(...members.map((m) => m.newest)),
    };
  });
}

/**
 * The condition's time series after alignment and reduction, and the keys of all of them. A
 * threshold reads the last alignment period; an absence looks back `windowMs` for each series'
 * newest point.
 */
export function alignedSeries(
  source: SeriesSource,
  c: Aggregated,
  now: number,
  metadataOf?: MetadataOf,
  windowMs?: number,
): { keys: Set<string>; aligned: AlignedSeries[] } {
  const agg = c.aggregations?.[0];
  const each = alignEach(source, c, now, metadataOf, windowMs);
  const reducer = agg?.crossSeriesReducer as Reducer | undefined;
  const aligned =
    reducer === undefined || reducer === 'REDUCE_NONE'
      ? each
      : reduceGroups(each, reducer, agg?.groupByFields ?? []);
  return { keys: new Set(aligned.map((s) => s.key)), aligned };
}

export const isViolated = (c: Threshold, value: number) =>
  violates(value, c.comparison as Comparison, c.thresholdValue);
