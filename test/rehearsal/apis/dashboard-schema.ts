/**
 * The shape of a Cloud Monitoring dashboard as the dashboards API (v1) takes it
 * (https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards#Dashboard), for the
 * widgets a deploy would draw: xyChart, scorecard, timeSeriesTable, text, alertChart, sectionHeader,
 * collapsibleGroup. Unknown fields are refused, a widget holds exactly one content, and mosaic
 * tiles must fit the grid without overlapping.
 */
import { z } from 'zod';

import { duration } from './kit';

const aligners = [
  'ALIGN_NONE', 'ALIGN_DELTA', 'ALIGN_RATE', 'ALIGN_INTERPOLATE', 'ALIGN_NEXT_OLDER', 'ALIGN_MIN', 'ALIGN_MAX',
  'ALIGN_MEAN', 'ALIGN_COUNT', 'ALIGN_SUM', 'ALIGN_STDDEV', 'ALIGN_COUNT_TRUE', 'ALIGN_COUNT_FALSE',
  'ALIGN_FRACTION_TRUE', 'ALIGN_PERCENTILE_99', 'ALIGN_PERCENTILE_95', 'ALIGN_PERCENTILE_50', 'ALIGN_PERCENTILE_05',
  'ALIGN_PERCENT_CHANGE',
] as const; // prettier-ignore
const reducers = [
  'REDUCE_NONE', 'REDUCE_MEAN', 'REDUCE_MIN', 'REDUCE_MAX', 'REDUCE_SUM', 'REDUCE_STDDEV', 'REDUCE_COUNT',
  'REDUCE_COUNT_TRUE', 'REDUCE_COUNT_FALSE', 'REDUCE_FRACTION_TRUE', 'REDUCE_PERCENTILE_99', 'REDUCE_PERCENTILE_95',
  'REDUCE_PERCENTILE_50', 'REDUCE_PERCENTILE_05',
] as const; // prettier-ignore

/** Monitoring's aggregation, shared by alert policies (v3) and dashboards (v1). */
export const aggregation = z
  .strictObject({
    alignmentPeriod: duration.optional(),
    perSeriesAligner: z.enum(aligners).optional(),
    crossSeriesReducer: z.enum(reducers).optional(),
    groupByFields: z.array(z.string()).optional(),
  })
  .refine(
    (a) =>
      !a.crossSeriesReducer ||
      a.crossSeriesReducer === 'REDUCE_NONE' ||
      (a.alignmentPeriod !== undefined &&
        a.perSeriesAligner !== undefined &&
        a.perSeriesAligner !== 'ALIGN_NONE'),
    'crossSeriesReducer needs alignmentPeriod and a perSeriesAligner other than ALIGN_NONE',
  );

/** A monitoring filter names its metric: `metric.type = "…"` (or a resource/metric selector). */
const filter = z
  .string()
  .refine((f) => /metric\.type\s*=\s*"[^"]+"/.test(f), 'filter must select a metric.type');

const timeSeriesFilter = z.strictObject({
  filter,
  aggregation: aggregation.optional(),
  secondaryAggregation: aggregation.optional(),
  pickTimeSeriesFilter: z
    .strictObject({
      rankingMethod: z.enum([
        'METHOD_UNSPECIFIED',
        'METHOD_MEAN',
        'METHOD_MAX',
        'METHOD_MIN',
        'METHOD_SUM',
        'METHOD_LATEST',
      ]),
      numTimeSeries: z.number().int().positive(),
      direction: z.enum(['DIRECTION_UNSPECIFIED', 'TOP', 'BOTTOM']).optional(),
    })
    .optional(),
});
const ratioPart = z.strictObject({ filter, aggregation: aggregation.optional() });
const timeSeriesQuery = z
  .strictObject({
    timeSeriesFilter: timeSeriesFilter.optional(),
    timeSeriesFilterRatio: z
      .strictObject({
        numerator: ratioPart,
        denominator: ratioPart,
        secondaryAggregation: aggregation.optional(),
      })
      .optional(),
    timeSeriesQueryLanguage: z.string().optional(),
    prometheusQuery: z.string().optional(),
    unitOverride: z.string().optional(),
    outputFullDuration: z.boolean().optional(),
  })
  .refine(
    (q) =>
      [q.timeSeriesFilter, q.timeSeriesFilterRatio, q.timeSeriesQueryLanguage, q.prometheusQuery].filter(
        (x) => x !== undefined,
      ).length === 1,
    'a timeSeriesQuery holds exactly one query',
  );
const axis = z.strictObject({
  label: z.string().optional(),
  scale: z.enum(['SCALE_UNSPECIFIED', 'LINEAR', 'LOG10']).optional(),
});
const threshold = z.strictObject({
  label: z.string().optional(),
  value: z.number(),
  color: z.enum(['COLOR_UNSPECIFIED', 'YELLOW', 'RED']).optional(),
  direction: z.enum(['DIRECTION_UNSPECIFIED', 'ABOVE', 'BELOW']).optional(),
  targetAxis: z.enum(['TARGET_AXIS_UNSPECIFIED', 'Y1', 'Y2']).optional(),
});
const xyChart = z.strictObject({
  dataSets: z
    .array(
      z.strictObject({
        timeSeriesQuery,
        plotType: z
          .enum(['PLOT_TYPE_UNSPECIFIED', 'LINE', 'STACKED_AREA', 'STACKED_BAR', 'HEATMAP'])
          .optional(),
        legendTemplate: z.string().optional(),
        minAlignmentPeriod: duration.optional(),
        targetAxis: z.enum(['TARGET_AXIS_UNSPECIFIED', 'Y1', 'Y2']).optional(),
      }),
    )
    .min(1),
  timeshiftDuration: duration.optional(),
  thresholds: z.array(threshold).optional(),
  xAxis: axis.optional(),
  yAxis: axis.optional(),
  y2Axis: axis.optional(),
  chartOptions: z.strictObject({ mode: z.enum(['MODE_UNSPECIFIED', 'COLOR', 'X_RAY', 'STATS']) }).optional(),
});
const scorecard = z.strictObject({
  timeSeriesQuery,
  gaugeView: z
    .strictObject({ lowerBound: z.number().optional(), upperBound: z.number().optional() })
    .optional(),
  sparkChartView: z
    .strictObject({
      sparkChartType: z.enum(['SPARK_CHART_TYPE_UNSPECIFIED', 'SPARK_LINE', 'SPARK_BAR']),
      minAlignmentPeriod: duration.optional(),
    })
    .optional(),
  thresholds: z.array(threshold).optional(),
});
const timeSeriesTable = z.strictObject({
  dataSets: z
    .array(
      z.strictObject({
        timeSeriesQuery,
        tableTemplate: z.string().optional(),
        minAlignmentPeriod: duration.optional(),
      }),
    )
    .min(1),
  metricVisualization: z.enum(['METRIC_VISUALIZATION_UNSPECIFIED', 'NUMBER', 'BAR']).optional(),
});
const contents = {
  xyChart,
  scorecard,
  timeSeriesTable,
  text: z.strictObject({
    content: z.string().optional(),
    format: z.enum(['FORMAT_UNSPECIFIED', 'MARKDOWN', 'RAW']).optional(),
  }),
  alertChart: z.strictObject({ name: z.string().regex(/^projects\/[^/]+\/alertPolicies\/[^/]+$/) }),
  sectionHeader: z.strictObject({ subtitle: z.string().optional(), dividerBelow: z.boolean().optional() }),
  collapsibleGroup: z.strictObject({ collapsed: z.boolean().optional() }),
  blank: z.strictObject({}),
};
const widget = z
  .strictObject({
    title: z.string().optional(),
    id: z.string().optional(),
    ...Object.fromEntries(Object.entries(contents).map(([k, v]) => [k, v.optional()])),
  })
  .refine(
    (w) => Object.keys(contents).filter((k) => (w as Record<string, unknown>)[k] !== undefined).length === 1,
    'a widget holds exactly one of ' + Object.keys(contents).join(', '),
  );
const tile = z.strictObject({
  xPos: z.number().int().min(0).optional(),
  yPos: z.number().int().min(0).optional(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  widget,
});

function tilesFit(layout: { columns?: number; tiles?: z.infer<typeof tile>[] }): boolean {
  const columns = layout.columns ?? 12;
  const cells = new Set<string>();
  for (const t of layout.tiles ?? []) {
    const x0 = t.xPos ?? 0;
    const y0 = t.yPos ?? 0;
    if (x0 + t.width > columns) return false;
    for (let x = x0; x < x0 + t.width; x++) {
      for (let y = y0; y < y0 + t.height; y++) {
        const key = `${x},${y}`;
        if (cells.has(key)) return false;
        cells.add(key);
      }
    }
  }
  return true;
}

const mosaicLayout = z
  .strictObject({ columns: z.number().int().min(1).max(48).optional(), tiles: z.array(tile).optional() })
  .refine(tilesFit, 'mosaic tiles must lie within the columns and not overlap');
const weighted = z.strictObject({ weight: z.number().int().optional(), widgets: z.array(widget) });

export const dashboardSchema = z
  .strictObject({
    name: z.string().optional(),
    displayName: z.string().min(1),
    etag: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    mosaicLayout: mosaicLayout.optional(),
    gridLayout: z
      .strictObject({ columns: z.number().int().positive().optional(), widgets: z.array(widget) })
      .optional(),
    rowLayout: z.strictObject({ rows: z.array(weighted) }).optional(),
    columnLayout: z.strictObject({ columns: z.array(weighted) }).optional(),
    dashboardFilters: z
      .array(
        z.strictObject({
          labelKey: z.string(),
          templateVariable: z.string().optional(),
          stringValue: z.string().optional(),
          filterType: z
            .enum([
              'FILTER_TYPE_UNSPECIFIED',
              'RESOURCE_LABEL',
              'METRIC_LABEL',
              'USER_METADATA_LABEL',
              'SYSTEM_METADATA_LABEL',
              'GROUP',
            ])
            .optional(),
        }),
      )
      .optional(),
  })
  .refine(
    (d) =>
      [d.mosaicLayout, d.gridLayout, d.rowLayout, d.columnLayout].filter((l) => l !== undefined).length === 1,
    'a dashboard has exactly one of mosaicLayout, gridLayout, rowLayout, columnLayout',
  );

export type Dashboard = z.infer<typeof dashboardSchema>;
