import * as functions from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { instanceEventsFromConfig } from '../../shared/instance-events/wire';
import { createLogger } from '../../shared/logging';
import { pubsubFunction } from '../pubsub-function';

const logger = createLogger({ name: 'instanceEvents' });

/** Pub/Sub `instance-events` → drain, deregister or restore the Consul nodes of GCE instances. */
export const instanceEvents = pubsubFunction('instanceEvents', logger, () => {
  const config = loadConfig();
  const handle = instanceEventsFromConfig(config, { logger, warm: true });
  logger.info({ consul: config.consul.baseUrl, dryRun: config.dryRun }, 'instanceEvents ready');
  return handle;
});

functions.cloudEvent('instanceEvents', instanceEvents);
