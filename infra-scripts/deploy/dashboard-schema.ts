import { z } from 'zod';

/**
 * The part of a Cloud Monitoring dashboard the deploy writes, checked as the dashboards API
 * defines it: https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards
 * (Dashboard, MosaicLayout, Tile, Widget, XyChart, DataSet, TimeSeriesQuery, TimeSeriesFilter,
 * Aggregation). Strict: a field the reference does not name is refused, as the API refuses it.
 */

/** A protobuf Duration in JSON: seconds with an `s`. */
const duration = z.string().regex(/^\d+(\.\d{1,9})?s$/, 'a duration such as "60s"');

export const aligners = [
  'ALIGN_NONE',
  'ALIGN_DELTA',
  'ALIGN_RATE',
  'ALIGN_INTERPOLATE',
  'ALIGN_NEXT_OLDER',
  'ALIGN_MIN',
  'ALIGN_MAX',
  'ALIGN_MEAN',
  'ALIGN_COUNT',
  'ALIGN_SUM',
  'ALIGN_STDDEV',
  'ALIGN_COUNT_TRUE',
  'ALIGN_COUNT_FALSE',
  'ALIGN_FRACTION_TRUE',
  'ALIGN_PERCENTILE_99',
  'ALIGN_PERCENTILE_95',
  'ALIGN_PERCENTILE_50',
  'ALIGN_PERCENTILE_05',
  'ALIGN_PERCENT_CHANGE',
] as const;
export const reducers = [
  'REDUCE_NONE',
  'REDUCE_MEAN',
  'REDUCE_MIN',
  'REDUCE_MAX',
  'REDUCE_SUM',
  'REDUCE_STDDEV',
  'REDUCE_COUNT',
  'REDUCE_COUNT_TRUE',
  'REDUCE_COUNT_FALSE',
  'REDUCE_FRACTION_TRUE',
  'REDUCE_PERCENTILE_99',
  'REDUCE_PERCENTILE_95',
  'REDUCE_PERCENTILE_50',
  'REDUCE_PERCENTILE_05',
] as const;

const labelKey = String.raw`(?:"[A-Za-z_][A-Za-z0-9_]*"|[A-Za-z_][A-Za-z0-9_]*)`;
/** A field of a filter or of `groupByFields`: the metric or resource type, or one of their labels. */
const field = String.raw`(?:metric\.type|resource\.type|(?:metric|resource)\.labels?\.${labelKey})`;
const quoted = String.raw`"(?:[^"\\]|\\.)*"`;
const fn = String.raw`(?:one_of|starts_with|ends_with|has_substring)\(\s*${quoted}(?:\s*,\s*${quoted})*\s*\)`;
const term = new RegExp(String.raw`^\s*(${field})\s*(=|!=)\s*(${quoted}|${fn})\s*`);

/**
 * A Monitoring filter of `field = value` terms joined by spaces or AND, naming exactly one metric
 * type (https://cloud.google.com/monitoring/api/v3/filters): the shape the deploy writes.
 */
export function filterTerms(filter: string): { field: string; op: string; value: string }[] | undefined {
  const terms: { field: string; op: string; value: string }[] = [];
  let rest = filter;
  while (rest.trim() !== '') {
    const m = term.exec(rest);
    if (!m) return undefined;
    terms.push({ field: m[1] as string, op: m[2] as string, value: m[3] as string });
    rest = rest.slice(m[0].length).replace(/^AND\s+/, '');
  }
  return terms.filter((t) => t.field === 'metric.type').length === 1 ? terms : undefined;
}

const aggregation = z
  .object({
    alignmentPeriod: duration,
    perSeriesAligner: z.enum(aligners),
    crossSeriesReducer: z.enum(reducers).optional(),
    groupByFields: z.array(z.string().regex(new RegExp(`^${field}$`))).optional(),
  })
  .strict()
  // "If crossSeriesReducer is specified, then perSeriesAligner must be specified and not equal to
  // ALIGN_NONE and alignmentPeriod must be specified" (Aggregation).
  .refine((a) => a.crossSeriesReducer === undefined || a.perSeriesAligner !== 'ALIGN_NONE', {
    message: 'a crossSeriesReducer needs a perSeriesAligner other than ALIGN_NONE',
  });

const timeSeriesFilter = z
  .object({
    filter: z.string().refine((f) => filterTerms(f) !== undefined, 'a filter of field=value terms'),
    aggregation: aggregation.optional(),
    secondaryAggregation: aggregation.optional(),
  })
  .strict();

const dataSet = z
  .object({
    timeSeriesQuery: z
      .object({
        timeSeriesFilter,
        unitOverride: z.string().optional(),
        outputFullDuration: z.boolean().optional(),
      })
      .strict(),
    plotType: z.enum(['LINE', 'STACKED_AREA', 'STACKED_BAR', 'HEATMAP']).optional(),
    targetAxis: z.enum(['Y1', 'Y2']).optional(),
    legendTemplate: z.string().optional(),
    minAlignmentPeriod: duration.optional(),
  })
  .strict();

const widget = z
  .object({
    title: z.string().min(1),
    xyChart: z
      .object({
        dataSets: z.array(dataSet).min(1),
        chartOptions: z
          .object({ mode: z.enum(['COLOR', 'X_RAY', 'STATS']) })
          .strict()
          .optional(),
        timeshiftDuration: duration.optional(),
      })
      .strict(),
  })
  .strict();

const columns = 48;

export const dashboardSchema = z
  .object({
    displayName: z.string().min(1),
    labels: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/), z.string().max(63)).optional(),
    mosaicLayout: z
      .object({
        // "The number of columns must be between 1 and 48, inclusive."
        columns: z.number().int().min(1).max(columns),
        tiles: z
          .array(
            z
              .object({
                xPos: z.number().int().min(0),
                yPos: z.number().int().min(0),
                width: z.number().int().min(1),
                height: z.number().int().min(1),
                widget,
              })
              .strict(),
          )
          .min(1),
      })
      .strict()
      // "Tiles must be contained within the specified number of columns."
      .refine((l) => l.tiles.every((t) => t.xPos + t.width <= l.columns), 'a tile outside the columns'),
  })
  .strict();

export type DashboardShape = z.infer<typeof dashboardSchema>;
