import { loadConfig, type OrchestratorConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { loadHealthSweepConfig, type HealthSweepConfig } from '../../shared/health-sweep/config';
import type { SweepResult } from '../../shared/health-sweep/sweep';
import { healthSweepFromConfig } from '../../shared/health-sweep/wire';
import type { Logger } from '../../shared/logging';
import type { Decision } from '../../shared/outcome';
import {
  loadScalingAlertsConfig,
  scalingRulesGiven,
  type ScalingAlertsConfig,
} from '../../shared/scaling-alerts/config';
import { leaseSweepFromConfig } from '../../shared/scaling-alerts/wire';

/** Everything healthSweep reads from its environment, validated. */
export interface HealthSweepSettings {
  config: OrchestratorConfig;
  sweep: HealthSweepConfig;
  /** scalingAlerts' rules when given here (SCALING_RULES_FILE/_JSON): the lease pass runs then. */
  alerts?: ScalingAlertsConfig;
}

/** healthSweep's configuration, in one place; throws ConfigError naming what is wrong. */
export function loadHealthSweepSettings(env: NodeJS.ProcessEnv = process.env): HealthSweepSettings {
  return {
    config: loadConfig(env),
    sweep: loadHealthSweepConfig(env),
    ...(scalingRulesGiven(env) ? { alerts: loadScalingAlertsConfig(env) } : {}),
  };
}

/**
 * healthSweep as deployed: the node sweep, then scalingAlerts' lease pass when its rules are given.
 * Both use one Consul client; the lease pass's failure is a WARNING line and never fails the node
 * sweep, whose result is the answer.
 */
export function composeHealthSweep(
  settings: HealthSweepSettings,
  options: { logger: Logger; consul?: ConsulClient },
) {
  const { config, alerts } = settings;
  const { logger } = options;
  const consul = options.consul ?? createConsulClient(config.consul);
  const nodes = healthSweepFromConfig(config, settings.sweep, { logger, consul });
  const leases = alerts ? leaseSweepFromConfig(config, alerts, { logger, consul }) : undefined;
  const run = async (o: { dryRun: boolean }): Promise<SweepResult> => {
    const result = await nodes.run(o);
    await leases?.(o).catch((err: unknown) =>
      logger.warn(
        { decision: 'failed' satisfies Decision, action: 'lease-sweep', reason: (err as Error).message },
        'scalingAlerts lease sweep failed',
      ),
    );
    return result;
  };
  return { run, close: () => nodes.close() };
}
