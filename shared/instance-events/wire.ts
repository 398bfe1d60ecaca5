import { createInstancesApi } from '../compute/instances';
import type { OrchestratorConfig } from '../config';
import { createConsulClient, type ConsulApi } from '../consul/client';
import { createLedger } from '../ledger/ledger';
import type { Logger } from '../logging';
import { createInstanceEventsHandler } from './execute';

/** KV layout of instanceEvents under the orchestrator's prefix (ARCHITECTURE §2, state). */
export const instanceEventsKeys = (kvPrefix: string) => ({
  ledger: `${kvPrefix}ledger/instance-events/`,
  records: `${kvPrefix}instance-events/instances/`,
});

/** The handler with its adapters built from the configuration; `consul` replaces the client. */
export function instanceEventsFromConfig(
  config: OrchestratorConfig,
  options: { logger: Logger; consul?: ConsulApi },
) {
  const consul = options.consul ?? createConsulClient(config.consul);
  const keys = instanceEventsKeys(config.kvPrefix);
  return createInstanceEventsHandler({
    consul,
    instances: createInstancesApi(config.compute),
    ledger: createLedger({
      kv: consul,
      prefix: keys.ledger,
      inProgressTtlMs: config.ledger.inProgressTtlMs,
      retentionMs: config.ledger.retentionMs,
    }),
    logger: options.logger,
    recordPrefix: keys.records,
    agentPort: config.consul.agentPort,
    dryRun: config.dryRun,
    project: config.project,
  });
}
