import type { OrchestratorConfig } from '../config';
import { createConsulClient, type ConsulClient } from '../consul/client';
import { kvPrefixes } from '../contract';
import { createGcpClients } from '../gcp/client';
import { createInstancesApi } from '../gcp/instances';
import { createLedger } from '../ledger/ledger';
import type { Logger } from '../logging';
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
  options: { logger: Logger; consul?: ConsulClient; now?: () => number },
) {
  const consul = options.consul ?? createConsulClient(config.consul);
  const keys = instanceEventsKeys(config.kvPrefix);
  // The operator token is held apart and used for force-leave alone, on the same address.
  const operator = config.forceLeaveToken ? consul.at({ token: config.forceLeaveToken }) : null;
  return createInstanceEventsHandler({
    consul,
    instances: createInstancesApi(createGcpClients(config.compute)),
    ledger: createLedger({
      kv: consul.kv,
      prefix: keys.ledger,
      inProgressTtlMs: config.ledger.inProgressTtlMs,
      retentionMs: config.ledger.retentionMs,
      now: options.now,
    }),
    logger: options.logger,
    recordPrefix: keys.records,
    drainPrefix: keys.draining,
    forceLeave: operator ? (node) => operator.agent.forceLeave(node) : null,
    dryRun: config.dryRun,
    project: config.project,
    maxEventAgeMs: config.ledger.retentionMs,
    now: options.now,
  });
}
