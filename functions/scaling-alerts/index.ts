import * as functions from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logging';
import { loadScalingAlertsConfig } from '../../shared/scaling-alerts/config';
import { scalingAlertsFromConfig } from '../../shared/scaling-alerts/wire';
import { pubsubFunction } from '../pubsub-function';

const logger = createLogger({ name: 'scalingAlerts' });

/** Pub/Sub `scaling-alerts` (Cloud Monitoring notifications) → autoscaler leases within guardrails. */
export const scalingAlerts = pubsubFunction('scalingAlerts', logger, () => {
  const config = loadConfig();
  const alerts = loadScalingAlertsConfig();
  const handle = scalingAlertsFromConfig(config, alerts, { logger });
  logger.info(
    { rules: alerts.rules.rules.length, tiers: Object.keys(alerts.rules.tiers), dryRun: config.dryRun },
    'scalingAlerts ready',
  );
  return handle;
});

functions.cloudEvent('scalingAlerts', scalingAlerts);
