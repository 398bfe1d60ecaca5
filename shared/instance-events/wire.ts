import type { OrchestratorConfig } from '../config';
import { createConsulClient, type ConsulClient } from '../consul/client';
import { kvPrefixes } from '../contract';
import { createGcpClients } from '../gcp/client';
import { createInstancesApi } from '../gcp/instances';
import { createMetricsWriter, type MetricsWriter } from '../gcp/monitoring';
import { createZoneOperationsApi } from '../gcp/operations';
import { ledgerFromConfig } from '../ledger/ledger';
import type { Logger } from '../logging';
import { forceLeaveWith } from '../membership';
import { createInstanceEventsHandler } from './handler';

/** KV layout of instanceEvents under the orchestrator's prefix (ARCHITECTURE §2, state). */
export const instanceEventsKeys = (kvPrefix: string) => {
  const prefixes = kvPrefixes(kvPrefix);
  return {
    ledger: prefixes.instanceEventsLedger,
    records: prefixes.instanceRecords,
    draining: prefixes.draining,
  };
};

/** The handler with its adapters built from the configuration; `consul` replaces the client. */
export function instanceEventsFromConfig(
  config: OrchestratorConfig,
  options: {
    logger: Logger;
    consul?: ConsulClient;
    now?: () => number;
    metrics?: MetricsWriter;
    /** Set up the Compute clients now: every action waits on one, and loading one takes seconds. */
    warm?: boolean;
  },
) {
  const consul = options.consul ?? createConsulClient(config.consul);
  const keys = instanceEventsKeys(config.kvPrefix);
  const clients = createGcpClients(config.compute);
  if (options.warm)
    // A failed set-up is retried by the first call that needs the client.
    void Promise.all([clients.ready('instances'), clients.ready('zoneOperations')]).catch(() => undefined);
  return createInstanceEventsHandler({
    consul,
    instances: createInstancesApi(clients),
    operations: createZoneOperationsApi(clients),
    metrics: options.metrics ?? createMetricsWriter(clients),
    ledger: ledgerFromConfig(config, consul.kv, options.now),
    logger: options.logger,
    recordPrefix: keys.records,
    drainPrefix: keys.draining,
    forceLeave: forceLeaveWith(consul, config.forceLeaveToken),
    dryRun: config.dryRun,
    project: config.project,
    maxEventAgeMs: config.ledger.retentionMs,
    now: options.now,
  });
}
