import type { OrchestratorConfig } from '../config';
import { createConsulClient, type ConsulClient } from '../consul';
import { createAutoscalers, type AutoscalersPort } from '../gcp/autoscalers';
import { createGcpClients } from '../gcp/client';
import { createGroupErrorsApi, type GroupErrorsApi } from '../gcp/groups';
import { createMetricsWriter, noMetrics, type MetricsWriter } from '../gcp/monitoring';
import type { Logger } from '../logging';
import type { ScalingAlertsConfig } from './config';
import { createAlertPolicies, type PoliciesPort } from './confirm';
import { createScalingAlertsHandler } from './handler';
import type { ScheduleCheck } from './schedule';
import { consulStateStore } from './state';
import { sweepLeases } from './sweep';

/** The handler with its adapters built from the configuration; any adapter can be replaced. */
export function scalingAlertsFromConfig(
  config: OrchestratorConfig,
  alerts: ScalingAlertsConfig,
  options: {
    logger: Logger;
    consul?: Pick<ConsulClient, 'kv'>;
    autoscalers?: AutoscalersPort;
    policies?: PoliciesPort;
    metrics?: MetricsWriter;
    groups?: GroupErrorsApi;
    now?: () => number;
    retryDelayMs?: number;
    scheduleCheck?: ScheduleCheck;
  },
) {
  const clients = createGcpClients(config.compute);
  return createScalingAlertsHandler({
    groups: options.groups ?? createGroupErrorsApi(clients),
    rules: alerts.rules,
    autoscalers:
      options.autoscalers ?? createAutoscalers(clients, { operationTimeoutMs: alerts.operationTimeoutMs }),
    policies: options.policies ?? createAlertPolicies(clients),
    state: consulStateStore((options.consul ?? createConsulClient(config.consul)).kv),
    metrics: options.metrics ?? (alerts.metrics ? createMetricsWriter(clients) : noMetrics),
    logger: options.logger,
    kvPrefix: config.kvPrefix,
    project: config.project,
    dryRun: config.dryRun,
    maxAttempts: alerts.maxAttempts,
    now: options.now,
    retryDelayMs: options.retryDelayMs,
    scheduleCheck: options.scheduleCheck,
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
    scheduleCheck?: ScheduleCheck;
    metrics?: MetricsWriter;
    groups?: GroupErrorsApi;
  },
) {
  const clients = createGcpClients(config.compute);
  const deps = {
    rules: alerts.rules,
    autoscalers:
      options.autoscalers ?? createAutoscalers(clients, { operationTimeoutMs: alerts.operationTimeoutMs }),
    groups: options.groups ?? createGroupErrorsApi(clients),
    metrics: options.metrics ?? (alerts.metrics ? createMetricsWriter(clients) : noMetrics),
    state: consulStateStore((options.consul ?? createConsulClient(config.consul)).kv),
    logger: options.logger,
    kvPrefix: config.kvPrefix,
    project: config.project,
    now: options.now,
    scheduleCheck: options.scheduleCheck,
  };
  return (run: { dryRun: boolean }) => sweepLeases(deps, { dryRun: run.dryRun || config.dryRun });
}
