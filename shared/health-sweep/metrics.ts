import type { MetricServiceClient } from '@google-cloud/monitoring/build/src/v3/metric_service_client';
import type { ComputeEndpoint } from '../config';
import type { ApiCalls } from './compute';
import type { MetricPoint } from './plan';

/** Writes the sweep's points as custom gauges (`createTimeSeries`, at most 200 series a request). */
export interface MetricsApi {
  write(project: string, points: readonly MetricPoint[], at: number): Promise<void>;
  close(): Promise<void>;
}

const MAX_SERIES = 200;

/**
 * The `createTimeSeries` body of some points on the `global` resource of the project. Kind and
 * value type are left out (optional on writes): Monitoring creates the descriptor as a DOUBLE
 * GAUGE from the first point, and the REST fallback would send the enums as numbers.
 */
export function timeSeriesOf(project: string, points: readonly MetricPoint[], at: number) {
  const endTime = { seconds: Math.floor(at / 1000), nanos: (at % 1000) * 1_000_000 };
  return points.map((p) => ({
    metric: { type: p.type, labels: p.labels },
    resource: { type: 'global', labels: { project_id: project } },
    points: [{ interval: { endTime }, value: { doubleValue: p.value } }],
  }));
}

/** Monitoring through the official client (REST fallback); the same endpoint options as Compute. */
export function createMetricsApi(
  endpoint: ComputeEndpoint,
  calls: ApiCalls,
  options: { timeoutMs?: number } = {},
): MetricsApi {
  let client: MetricServiceClient | undefined;
  const timeout = options.timeoutMs ?? 10_000;
  const get = () => {
    if (!client) {
      // Deferred: only the metric client file, and only once a sweep has something to write.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require('@google-cloud/monitoring/build/src/v3/metric_service_client') as {
        MetricServiceClient: typeof MetricServiceClient;
      };
      const opts: NonNullable<ConstructorParameters<typeof MetricServiceClient>[0]> = {
        ...endpoint,
        fallback: true,
      };
      if (endpoint.protocol === 'http') {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { googleAuthLibrary } = require('google-gax') as typeof import('google-gax');
        opts.authClient = new googleAuthLibrary.PassThroughClient({
          transporterOptions: { fetchImplementation: fetch },
        });
      }
      client = new mod.MetricServiceClient(opts);
    }
    return client;
  };
  return {
    async write(project, points, at) {
      const series = timeSeriesOf(project, points, at);
      for (let i = 0; i < series.length; i += MAX_SERIES) {
        calls.monitoring++;
        await get().createTimeSeries(
          { name: `projects/${project}`, timeSeries: series.slice(i, i + MAX_SERIES) },
          { timeout, maxRetries: 1 },
        );
      }
    },
    async close() {
      await client?.close();
    },
  };
}
