import { createInstancesApi } from '../compute/instances';
import type { OrchestratorConfig } from '../config';
import { createConsulClient, type ConsulClient } from '../consul';
import { createLedger } from '../ledger/ledger';
import type { Logger } from '../logging';
import { loadScalingAlertsConfig } from '../scaling-alerts/config';
import { leaseSweepFromConfig } from '../scaling-alerts/wire';
import { createGroupsApi, noCalls, type ApiCalls } from './compute';
import type { HealthSweepConfig } from './config';
import { createMetricsApi } from './metrics';
import { healthSweepKeys } from './state';
import { createHealthSweep } from './sweep';

/** The sweep with its adapters built from the configuration; `consul` replaces the client. */
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
    /** Where SCALING_RULES_FILE / SCALING_RULES_JSON are read (default process.env). */
    env?: NodeJS.ProcessEnv;
  },
) {
  const consul = options.consul ?? createConsulClient(config.consul);
  const calls = options.calls ?? noCalls();
  const keys = healthSweepKeys(config.kvPrefix);
  const groups = createGroupsApi(config.compute, calls);
  const metrics = createMetricsApi(config.compute, calls);
  // The operator token is held apart and used for force-leave alone, on the same address.
  const operator = config.forceLeaveToken ? consul.at({ token: config.forceLeaveToken }) : null;
  const run = createHealthSweep({
    config: sweepConfig,
    consul,
    groups,
    instances: createInstancesApi(config.compute),
    metrics,
    forceLeave: operator ? (node) => operator.agent.forceLeave(node) : null,
    ledger: createLedger({
      kv: consul.kv,
      prefix: keys.ledger,
      inProgressTtlMs: config.ledger.inProgressTtlMs,
      retentionMs: config.ledger.retentionMs,
    }),
    keys,
    logger: options.logger,
    metricsProject: config.project ?? (sweepConfig.groups[0] as { project: string }).project,
    calls,
    ...(options.lockTtlSeconds ? { lockTtlSeconds: options.lockTtlSeconds } : {}),
    ...(options.lookupLimit !== undefined ? { lookupLimit: options.lookupLimit } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  // scalingAlerts' lease pass, when its rules are configured here: after the node sweep, and its
  // failure never fails the node sweep.
  const leases = scalingAlertsConfigured(options.env ?? process.env)
    ? leaseSweepFromConfig(config, loadScalingAlertsConfig(options.env ?? process.env), {
        logger: options.logger,
        consul,
      })
    : undefined;
  const runWithLeases = async (o: { dryRun: boolean }) => {
    const result = await run(o);
    await leases?.(o).catch((err: unknown) =>
      options.logger.warn({ reason: (err as Error).message }, 'scalingAlerts lease sweep failed'),
    );
    return result;
  };
  return {
    run: runWithLeases,
    calls,
    async close() {
      await Promise.all([groups.close(), metrics.close()]);
    },
  };
}

const scalingAlertsConfigured = (env: NodeJS.ProcessEnv) =>
  !!(env.SCALING_RULES_FILE || env.SCALING_RULES_JSON);
