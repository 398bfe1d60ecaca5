import * as functions from '@google-cloud/functions-framework';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logging';
import { loadScalingAlertsConfig } from '../../shared/scaling-alerts/config';
import type { AlertOutcome } from '../../shared/scaling-alerts/handler';
import { scalingAlertsFromConfig } from '../../shared/scaling-alerts/wire';

const logger = createLogger({ name: 'scalingAlerts' });
const messagePublishedType = 'google.cloud.pubsub.topic.v1.messagePublished';
let handle: ((data: unknown) => Promise<AlertOutcome>) | undefined;

// Built on the first event, not at load: keeps the cold start to loading code.
function handler() {
  if (!handle) {
    const config = loadConfig();
    const alerts = loadScalingAlertsConfig();
    handle = scalingAlertsFromConfig(config, alerts, { logger });
    logger.info(
      { rules: alerts.rules.rules.length, tiers: Object.keys(alerts.rules.tiers), dryRun: config.dryRun },
      'scalingAlerts ready',
    );
  }
  return handle;
}

/** Pub/Sub `scaling-alerts` (Cloud Monitoring notifications) → autoscaler leases within guardrails. */
export async function scalingAlerts(event: CloudEvent<unknown>): Promise<void> {
  if (event.type !== messagePublishedType) {
    logger.warn(
      { decision: 'ignored', reason: `event type ${event.type}` },
      'not a Pub/Sub message: acknowledged',
    );
    return;
  }
  try {
    await handler()(event.data);
  } catch (err) {
    logger.error(
      { decision: 'retry', reason: (err as Error).message, eventId: event.id },
      'scaling alert failed: redelivery',
    );
    throw err;
  }
}

functions.cloudEvent('scalingAlerts', scalingAlerts);
