import { loadConfig } from '../shared/config';
import { classifyError } from '../shared/errors';
import { createGcpClients } from '../shared/gcp/client';
import { createMetricsWriter, customMetric, type MetricsWriter } from '../shared/gcp/monitoring';
import type { Logger } from '../shared/logging';

/**
 * `function_heartbeat{function}` = 1 after a completed run: the deploy's "who watches the watcher"
 * alert fires when healthSweep's series stops (steps/monitoring.ts). A failed run writes nothing,
 * which is the signal.
 */
export type Heartbeat = () => Promise<void>;

/**
 * Monitoring accepts one point per series every 5 s; the alert looks at minutes. One point per
 * minute per instance keeps instanceEvents (hundreds of events a second) from writing one per event.
 * https://cloud.google.com/monitoring/quotas#custom_metrics_quotas
 */
export const heartbeatIntervalMs = 60_000;

export function createHeartbeat(
  fn: string,
  deps: {
    writer: MetricsWriter;
    /** No project (a local run without one): no heartbeat. */
    project: string | undefined;
    logger: Logger;
    now?: () => number;
    intervalMs?: number;
  },
): Heartbeat {
  const now = deps.now ?? Date.now;
  const interval = deps.intervalMs ?? heartbeatIntervalMs;
  let last = -Infinity;
  return async () => {
    const at = now();
    if (deps.project === undefined || at - last < interval) return;
    last = at;
    const point = { type: customMetric('function_heartbeat'), labels: { function: fn }, value: 1 };
    // A lost heartbeat is a gap the alert tolerates for N intervals; it never fails the run.
    await deps.writer.write(deps.project, [point], at).catch((err: unknown) => {
      deps.logger.warn({ reason: classifyError(err).message, function: fn }, 'heartbeat not written');
    });
  };
}

/** The heartbeat of a deployed function: its project and Monitoring endpoint from the environment. */
export function heartbeatFromEnv(
  fn: string,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Heartbeat {
  const config = loadConfig(env);
  const clients = createGcpClients(config.compute);
  // Short: the heartbeat is awaited before the answer (Cloud Run throttles CPU after it).
  const writer = createMetricsWriter(clients, { timeoutMs: 3_000 });
  return createHeartbeat(fn, { writer, project: config.project, logger });
}

/** heartbeatFromEnv, built on the first beat (after the function's own configuration was read). */
export function lazyHeartbeat(fn: string, logger: Logger): Heartbeat {
  let beat: Heartbeat | undefined;
  return () => (beat ??= heartbeatFromEnv(fn, logger))();
}
