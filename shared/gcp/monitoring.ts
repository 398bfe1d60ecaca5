import type { GcpClients } from './client';

/** A point of a custom metric (`custom.googleapis.com/ilb/...`), written as a gauge. */
export interface MetricPoint {
  type: string;
  labels: Record<string, string>;
  value: number;
}

/** The type of one of the orchestrator's custom metrics. */
export const customMetric = (name: string): string => `custom.googleapis.com/ilb/${name}`;

/** Monitoring takes at most 200 series in one `createTimeSeries` request. */
const MAX_SERIES = 200;

/**
 * The `createTimeSeries` series of some points on the `global` resource of the project, one point
 * per series (Monitoring refuses two points of one series in a request: a later point wins). Kind
 * and value type are left out (optional on writes): Monitoring creates the descriptor as a DOUBLE
 * GAUGE from the first point, and the REST client would send the enums as numbers.
 * https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/create
 */
export function timeSeriesOf(project: string, points: readonly MetricPoint[], at: number) {
  const endTime = { seconds: Math.floor(at / 1000), nanos: (at % 1000) * 1_000_000 };
  const series = new Map<string, MetricPoint>();
  for (const p of points) series.set(JSON.stringify([p.type, Object.entries(p.labels).sort()]), p);
  return [...series.values()].map((p) => ({
    metric: { type: p.type, labels: p.labels },
    resource: { type: 'global', labels: { project_id: project } },
    points: [{ interval: { endTime }, value: { doubleValue: p.value } }],
  }));
}

/** Writes metric points; the one writer every function uses. */
export interface MetricsWriter {
  write(project: string, points: readonly MetricPoint[], at: number): Promise<void>;
}

export const noMetrics: MetricsWriter = { write: () => Promise.resolve() };

export function createMetricsWriter(
  clients: GcpClients,
  options: { timeoutMs?: number; onRequest?: () => void } = {},
): MetricsWriter {
  const timeout = options.timeoutMs ?? 10_000;
  return {
    async write(project, points, at) {
      const series = timeSeriesOf(project, points, at);
      for (let i = 0; i < series.length; i += MAX_SERIES) {
        options.onRequest?.();
        await (
          await clients.ready('metrics')
        ).createTimeSeries(
          { name: `projects/${project}`, timeSeries: series.slice(i, i + MAX_SERIES) },
          { timeout, maxRetries: 1 },
        );
      }
    },
  };
}
