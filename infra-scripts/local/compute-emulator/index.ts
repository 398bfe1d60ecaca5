import type { Logger } from '../../../shared/logging';
import { Alerting } from './alerting';
import { ComputeEmulator, type EmulatorOptions } from './emulator';
import { TimeSeriesStore } from './monitoring';
import { type RunningServer, serve } from './server';

export { ComputeEmulator } from './emulator';
export type { InstanceDriver, InstanceSpec } from './driver';
export { ProcessDriver } from './process-driver';
export { pubsubSink, sinkCarries } from './pubsub-sink';
export { type AuditFaults, faultyAudit } from './audit-faults';
export { GCE_PREEMPTION_SHUTDOWN_MS } from './runtime';
export { TimeSeriesStore } from './monitoring';
export { Alerting } from './alerting';

export interface StartOptions extends Omit<EmulatorOptions, 'metric'> {
  logger: Logger;
  /**
   * Monitoring alerting: policies and channels over REST, evaluated every `evaluateIntervalMs`;
   * notifications go out through `publish` (to a full topic name).
   */
  alerting?: { publish: (topic: string, data: Buffer) => Promise<unknown>; evaluateIntervalMs?: number };
  host?: string;
  port?: number;
}

export interface RunningEmulator {
  emulator: ComputeEmulator;
  monitoring: TimeSeriesStore;
  alerting?: Alerting;
  /** `http://127.0.0.1:PORT`; clients take `{apiEndpoint: '127.0.0.1', port, protocol: 'http'}`. */
  url: string;
  port: number;
  stop(graceful?: boolean): Promise<void>;
}

/** Starts the Compute + Monitoring emulator: HTTP server, MIG reconcile and autoscaler loops. */
export async function startComputeEmulator(options: StartOptions): Promise<RunningEmulator> {
  const monitoring = new TimeSeriesStore(options.clock);
  const emulator = new ComputeEmulator({ ...options, metric: (type, id) => monitoring.latest(type, id) });
  const alerting = options.alerting
    ? new Alerting({
        project: emulator.project,
        projectNumber: emulator.projectNumber,
        store: monitoring,
        publish: options.alerting.publish,
        clock: options.clock,
        resourceName: (r) =>
          r.type === 'gce_instance'
            ? emulator.allInstances().find((i) => i.id === r.labels.instance_id)?.name
            : undefined,
        // Monitoring joins a VM's labels as `metadata.user_labels` (the deploy's CPU policies filter on them).
        resourceMetadata: (r) => {
          const i =
            r.type === 'gce_instance'
              ? emulator.allInstances().find((x) => x.id === r.labels.instance_id)
              : undefined;
          return i && { user_labels: i.labels, system_labels: { name: i.name } };
        },
        onError: (err) => options.logger.warn({ err }, 'alerting evaluation failed'),
      })
    : undefined;
  const server: RunningServer = await serve({
    emulator,
    monitoring,
    alerting,
    logger: options.logger,
    host: options.host,
    port: options.port,
  });
  emulator.start();
  alerting?.start(options.alerting?.evaluateIntervalMs ?? 60_000);
  options.logger.info(
    { url: server.url, project: options.project, zones: options.zones },
    'compute emulator listening',
  );
  return {
    emulator,
    monitoring,
    alerting,
    url: server.url,
    port: server.port,
    async stop(graceful = false) {
      await alerting?.stop();
      await server.close();
      await emulator.stop(graceful);
    },
  };
}
