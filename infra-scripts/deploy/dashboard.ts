import { topicFunctions } from '../../functions/catalog';
import { customMetric } from '../../shared/gcp/monitoring';
import { metricTypes as scalingMetrics } from '../../shared/scaling-alerts/plan';
import type { ResolvedConfig } from './config';
import { APP_LABEL, names } from './steps/names';

/**
 * The deployment's Cloud Monitoring dashboard: a pure function of the config. Shape from Google's
 * reference, https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards
 * (a MosaicLayout of tiles, each an XyChart whose dataSets are TimeSeriesFilter queries).
 */

/**
 * The orchestrator's custom metrics the dashboard charts: where a module exports the type it
 * writes, from there; the others as agreed between the issue-19/18 helpers (each written via
 * `customMetric(name)`, on the `global` resource, by shared/gcp/monitoring.ts' writer).
 */
export const chartedMetrics = {
  healthyMembers: customMetric('healthy_members'),
  staleNodes: customMetric('stale_nodes'),
  orphans: customMetric('orphans'),
  actions: customMetric('actions'),
  refusedActions: customMetric('refused_actions'),
  sweepDuration: customMetric('sweep_duration_ms'),
  repairedWithoutEvent: customMetric('sweep_repaired_without_event'),
  identityRefused: customMetric('identity_refused'),
  eventsRefused: customMetric('events_refused'),
  routingSkipped: customMetric('routing_skipped'),
  heartbeat: customMetric('function_heartbeat'),
  creationErrors: customMetric('instance_creation_errors'),
  unreachableFloor: customMetric('scaling_alerts/unreachable_floor'),
  scalingDecisions: scalingMetrics.decision,
  effectiveFloor: scalingMetrics.floor,
  activeLeases: scalingMetrics.leases,
} as const;

/** Google's own metrics the dashboard charts: the functions' Cloud Run requests, dead letters. */
export const googleMetrics = {
  requestCount: 'run.googleapis.com/request_count',
  requestLatencies: 'run.googleapis.com/request_latencies',
  undelivered: 'pubsub.googleapis.com/subscription/num_undelivered_messages',
} as const;

interface Aggregation {
  alignmentPeriod: string;
  perSeriesAligner: string;
  crossSeriesReducer?: string;
  groupByFields?: string[];
}

interface Series {
  filter: string;
  aggregation: Aggregation;
  legend?: string;
}

/** A gauge of ours: its latest value in each minute, summed over the series with the same labels. */
const ours = (type: string, by: string[] = [], reducer = 'REDUCE_SUM'): Series => ({
  filter: `metric.type="${type}" resource.type="global"`,
  aggregation: {
    alignmentPeriod: '60s',
    perSeriesAligner: 'ALIGN_MAX',
    crossSeriesReducer: reducer,
    ...(by.length ? { groupByFields: by.map((l) => `metric.label."${l}"`) } : {}),
  },
  ...(by.length ? { legend: by.map((l) => `\${metric.labels.${l}}`).join(' ') } : {}),
});

const chart = (title: string, ...series: Series[]) => ({
  title,
  xyChart: {
    dataSets: series.map((s) => ({
      timeSeriesQuery: { timeSeriesFilter: { filter: s.filter, aggregation: s.aggregation } },
      plotType: 'LINE',
      targetAxis: 'Y1',
      ...(s.legend ? { legendTemplate: s.legend } : {}),
    })),
    chartOptions: { mode: 'COLOR' },
  },
});

/** The dashboard's display name: what the deploy and teardown find it by. */
export const dashboardName = (c: ResolvedConfig) => `${c.deployment} orchestrator`;

/** Two charts a row, six columns each, on Monitoring's 12-column mosaic. */
const COLUMNS = 12;
const WIDTH = 6;
const HEIGHT = 4;

export function dashboardConfig(c: ResolvedConfig) {
  const n = names(c);
  const m = chartedMetrics;
  const services = [...c.functions, ...(c.functions.includes('healthSweep') ? ['healthSweepHttp'] : [])].map(
    (f) => `"${n.fnService(f)}"`,
  );
  const holds = c.functions.map((f) => `"${topicFunctions[f].trigger.topic}-dead-letter-hold"`);
  const run = (type: string) =>
    `metric.type="${type}" resource.type="cloud_run_revision" resource.label."service_name"=one_of(${services.join(',')})`;
  const widgets = [
    chart('Healthy members per role and zone', ours(m.healthyMembers, ['role', 'zone'], 'REDUCE_MAX')),
    chart('Stale nodes and orphans', ours(m.staleNodes, [], 'REDUCE_MAX'), ours(m.orphans, [], 'REDUCE_MAX')),
    chart('Sweep actions', ours(m.actions, ['action'])),
    chart(
      'Refused: sweep actions, identities, routes',
      ours(m.refusedActions, ['reason']),
      ours(m.identityRefused, ['reason']),
      ours(m.routingSkipped, ['reason']),
    ),
    chart('Repaired by the sweep, missed by events', ours(m.repairedWithoutEvent, ['kind'])),
    chart('Sweep duration (ms)', ours(m.sweepDuration, [], 'REDUCE_MAX')),
    chart('Function heartbeats', ours(m.heartbeat, ['function'])),
    chart(
      'Event decisions',
      ours(m.scalingDecisions, ['tier', 'decision']),
      ours(m.eventsRefused, ['reason']),
    ),
    chart(
      'Lease floors',
      ours(m.effectiveFloor, ['tier'], 'REDUCE_MAX'),
      ours(m.activeLeases, ['tier']),
      ours(m.unreachableFloor, ['group'], 'REDUCE_MAX'),
    ),
    chart('Instance creation errors', ours(m.creationErrors, ['group', 'code'])),
    // Without functions there are no services and no dead-letter holds to chart.
    ...(c.functions.length === 0
      ? []
      : [
          chart('Function requests per second', {
            filter: run(googleMetrics.requestCount),
            aggregation: {
              alignmentPeriod: '60s',
              perSeriesAligner: 'ALIGN_RATE',
              crossSeriesReducer: 'REDUCE_SUM',
              groupByFields: ['resource.label."service_name"', 'metric.label."response_code_class"'],
            },
            legend: '${resource.labels.service_name} ${metric.labels.response_code_class}',
          }),
          chart('Function latency, 99th percentile', {
            filter: run(googleMetrics.requestLatencies),
            aggregation: {
              alignmentPeriod: '60s',
              perSeriesAligner: 'ALIGN_DELTA',
              crossSeriesReducer: 'REDUCE_PERCENTILE_99',
              groupByFields: ['resource.label."service_name"'],
            },
            legend: '${resource.labels.service_name}',
          }),
          chart('Dead letters held', {
            filter: `metric.type="${googleMetrics.undelivered}" resource.type="pubsub_subscription" resource.label."subscription_id"=one_of(${holds.join(',')})`,
            aggregation: {
              alignmentPeriod: '60s',
              perSeriesAligner: 'ALIGN_MAX',
              crossSeriesReducer: 'REDUCE_SUM',
              groupByFields: ['resource.label."subscription_id"'],
            },
            legend: '${resource.labels.subscription_id}',
          }),
        ]),
  ];
  return {
    displayName: dashboardName(c),
    labels: { app: APP_LABEL, deployment: c.deployment },
    mosaicLayout: {
      columns: COLUMNS,
      tiles: widgets.map((widget, i) => ({
        xPos: (i % (COLUMNS / WIDTH)) * WIDTH,
        yPos: Math.floor(i / (COLUMNS / WIDTH)) * HEIGHT,
        width: WIDTH,
        height: HEIGHT,
        widget,
      })),
    },
  };
}
