import type { OrchestratorConfig } from '../config';
import { createConsulClient, type ConsulClient } from '../consul';
import type { Logger } from '../logging';
import { createAutoscalersPort, type AutoscalersPort } from './compute';
import type { ScalingAlertsConfig } from './config';
import { createScalingAlertsHandler } from './handler';
import { createMetricsPort, noMetrics, type MetricsPort } from './metrics';
import { consulStateStore } from './state-store';
import { sweepLeases } from './sweep';

/** The handler with its adapters built from the configuration; any adapter can be replaced. */
export function scalingAlertsFromConfig(
  config: OrchestratorConfig,
  alerts: ScalingAlertsConfig,
  options: {
    logger: Logger;
    consul?: Pick<ConsulClient, 'kv'>;
    autoscalers?: AutoscalersPort;
    metrics?: MetricsPort;
    now?: () => number;
    retryDelayMs?: number;
  },
) {
  const metrics =
    options.metrics ??
    (alerts.metrics && config.project !== undefined
      ? createMetricsPort(config.compute, config.project)
      : noMetrics);
  return createScalingAlertsHandler({
    rules: alerts.rules,
    autoscalers:
      options.autoscalers ??
      createAutoscalersPort(config.compute, { operationTimeoutMs: alerts.operationTimeoutMs }),
    state: consulStateStore((options.consul ?? createConsulClient(config.consul)).kv),
    metrics,
    logger: options.logger,
    kvPrefix: config.kvPrefix,
    project: config.project,
    dryRun: config.dryRun,
    maxAttempts: alerts.maxAttempts,
    now: options.now,
    retryDelayMs: options.retryDelayMs,
  });
}

/**
 * The lease pass for healthSweep, when scalingAlerts is configured here (`SCALING_RULES_FILE` or
 * `SCALING_RULES_JSON`); undefined otherwise. The token needs `write` on the scaling-alerts prefix.
 */
export function leaseSweepFromConfig(
  config: OrchestratorConfig,
  alerts: ScalingAlertsConfig,
  options: {
    logger: Logger;
    consul?: Pick<ConsulClient, 'kv'>;
    autoscalers?: AutoscalersPort;
    now?: () => number;
  },
) {
  const deps = {
    rules: alerts.rules,
    autoscalers:
      options.autoscalers ??
      createAutoscalersPort(config.compute, { operationTimeoutMs: alerts.operationTimeoutMs }),
    state: consulStateStore((options.consul ?? createConsulClient(config.consul)).kv),
    logger: options.logger,
    kvPrefix: config.kvPrefix,
    project: config.project,
    now: options.now,
  };
  return (run: { dryRun: boolean }) => sweepLeases(deps, { dryRun: run.dryRun || config.dryRun });
}
