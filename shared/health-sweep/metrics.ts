import type { GcpClients } from '../gcp/client';
import { createMetricsWriter, type MetricsWriter } from '../gcp/monitoring';
import type { ApiCalls } from './calls';

/**
 * The sweep's metrics writer: the one writer, counting its requests in `calls`. The metric client
 * is initialised first: its own methods start the initialisation without handling its failure
 * (the credentials, for one), which would fail after the sweep answered.
 */
export function createSweepMetrics(clients: GcpClients, calls: ApiCalls): MetricsWriter {
  const writer = createMetricsWriter(clients, { onRequest: () => calls.monitoring++ });
  return {
    async write(project, points, at) {
      if (points.length === 0) return;
      await clients.get('metrics').initialize();
      await writer.write(project, points, at);
    },
  };
}
