import type { MetricServiceClient } from '@google-cloud/monitoring/build/src/v3/metric_service_client';
import type { ComputeEndpoint } from '../config';
import type { MetricPoint } from './plan';

/** Publishes the metric points of plans. */
export interface MetricsPort {
  publish(points: MetricPoint[], now: number): Promise<void>;
}

export const noMetrics: MetricsPort = { publish: () => Promise.resolve() };

/**
 * Custom metrics on the `global` resource through the official Monitoring client. Kind and value
 * type are left out: the descriptor is created on first write as a GAUGE of the value's type (a
 * double), and the REST client would send them as enum numbers.
 * An http endpoint is a local emulator (the Compute emulator serves the timeSeries subset), called
 * without credentials.
 */
export function createMetricsPort(
  endpoint: ComputeEndpoint,
  project: string,
  options: { timeoutMs?: number } = {},
): MetricsPort & { close(): Promise<void> } {
  let client: MetricServiceClient | undefined;
  const make = () => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { MetricServiceClient } =
      require('@google-cloud/monitoring/build/src/v3/metric_service_client') as typeof import('@google-cloud/monitoring/build/src/v3/metric_service_client');
    const opts: ConstructorParameters<typeof MetricServiceClient>[0] = { ...endpoint, fallback: true };
    if (endpoint.protocol === 'http') {
      const { googleAuthLibrary } = require('google-gax') as typeof import('google-gax');
      opts.authClient = new googleAuthLibrary.PassThroughClient({
        transporterOptions: { fetchImplementation: fetch },
      });
    }
    /* eslint-enable @typescript-eslint/no-require-imports */
    return new MetricServiceClient(opts);
  };
  return {
    async publish(points, now) {
      if (!points.length) return;
      client ??= make();
      const endTime = { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 };
      // One point per series and request, as Monitoring requires; a later point of a series wins.
      const series = new Map<string, MetricPoint>();
      for (const p of points) series.set(JSON.stringify([p.type, Object.entries(p.labels).sort()]), p);
      const all = [...series.values()];
      for (let i = 0; i < all.length; i += 200) {
        await client.createTimeSeries(
          {
            name: `projects/${project}`,
            timeSeries: all.slice(i, i + 200).map((p) => ({
              metric: { type: p.type, labels: p.labels },
              resource: { type: 'global', labels: { project_id: project } },
              points: [{ interval: { endTime }, value: { doubleValue: p.value } }],
            })),
          },
          { timeout: options.timeoutMs ?? 10_000, maxRetries: 1 },
        );
      }
    },
    async close() {
      await client?.close();
      client = undefined;
    },
  };
}
