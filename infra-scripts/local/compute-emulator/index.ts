import type { Logger } from '../../../shared/logging';
import { ComputeEmulator, type EmulatorOptions } from './emulator';
import { TimeSeriesStore } from './monitoring';
import { type RunningServer, serve } from './server';

export { ComputeEmulator } from './emulator';
export type { InstanceDriver, InstanceSpec } from './driver';
export { ProcessDriver } from './process-driver';
export { pubsubSink } from './pubsub-sink';
export { type AuditFaults, faultyAudit } from './audit-faults';
export { GCE_PREEMPTION_SHUTDOWN_MS } from './runtime';
export { TimeSeriesStore } from './monitoring';

export interface StartOptions extends Omit<EmulatorOptions, 'metric'> {
  logger: Logger;
  host?: string;
  port?: number;
}

export interface RunningEmulator {
  emulator: ComputeEmulator;
  monitoring: TimeSeriesStore;
  /** `http://127.0.0.1:PORT`; clients take `{apiEndpoint: '127.0.0.1', port, protocol: 'http'}`. */
  url: string;
  port: number;
  stop(graceful?: boolean): Promise<void>;
}

/** Starts the Compute + Monitoring emulator: HTTP server, MIG reconcile and autoscaler loops. */
export async function startComputeEmulator(options: StartOptions): Promise<RunningEmulator> {
  const monitoring = new TimeSeriesStore(options.clock);
  const emulator = new ComputeEmulator({ ...options, metric: (type, id) => monitoring.latest(type, id) });
  const server: RunningServer = await serve({
    emulator,
    monitoring,
    logger: options.logger,
    host: options.host,
    port: options.port,
  });
  emulator.start();
  options.logger.info(
    { url: server.url, project: options.project, zones: options.zones },
    'compute emulator listening',
  );
  return {
    emulator,
    monitoring,
    url: server.url,
    port: server.port,
    async stop(graceful = false) {
      await server.close();
      await emulator.stop(graceful);
    },
  };
}
