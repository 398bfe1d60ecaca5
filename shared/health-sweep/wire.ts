import type { OrchestratorConfig } from '../config';
import { createConsulClient, type ConsulClient } from '../consul';
import { createGcpClients } from '../gcp/client';
import { createGroupsApi } from '../gcp/groups';
import { createInstancesApi } from '../gcp/instances';
import { ledgerFromConfig } from '../ledger/ledger';
import type { Logger } from '../logging';
import { noCalls, type ApiCalls } from './calls';
import type { HealthSweepConfig } from './config';
import { createSweepMetrics } from './metrics';
import { healthSweepKeys } from './state';
import { createHealthSweep } from './sweep';

/**
 * The node sweep with its adapters built from the configuration; `consul` replaces the client.
 * `run` sweeps the nodes of the watched groups and nothing else; `close` closes the Google clients.
 */
export function healthSweepFromConfig(
  config: OrchestratorConfig,
  sweepConfig: HealthSweepConfig,
  options: {
    logger: Logger;
    consul?: ConsulClient;
    calls?: ApiCalls;
    lockTtlSeconds?: number;
    lookupLimit?: number;
    now?: () => number;
  },
) {
  const consul = options.consul ?? createConsulClient(config.consul);
  const calls = options.calls ?? noCalls();
  const keys = healthSweepKeys(config.kvPrefix);
  const clients = createGcpClients(config.compute);
  const run = createHealthSweep({
    config: sweepConfig,
    consul,
    groups: createGroupsApi(clients, { onRequest: () => calls.compute++ }),
    instances: createInstancesApi(clients),
    metrics: createSweepMetrics(clients, calls),
    // No force-leave: instanceEvents alone holds that token (functions/catalog.ts says why).
    forceLeave: null,
    ledger: ledgerFromConfig(config, consul.kv),
    keys,
    logger: options.logger,
    metricsProject: config.project ?? (sweepConfig.groups[0] as { project: string }).project,
    calls,
    ...(options.lockTtlSeconds ? { lockTtlSeconds: options.lockTtlSeconds } : {}),
    ...(options.lookupLimit !== undefined ? { lookupLimit: options.lookupLimit } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  return { run, calls, close: () => clients.close() };
}
