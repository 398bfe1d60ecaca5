import * as functions from '@google-cloud/functions-framework';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { classifyError } from '../../shared/errors';
import type { MessageOutcome } from '../../shared/instance-events/handler';
import { messagePublishedType } from '../../shared/instance-events/schema';
import { instanceEventsFromConfig } from '../../shared/instance-events/wire';
import { createLogger } from '../../shared/logging';

const logger = createLogger({ name: 'instanceEvents' });
let handle: ((data: unknown) => Promise<MessageOutcome>) | undefined;

// Built on the first event, not at load: keeps the cold start to loading code.
function handler() {
  if (!handle) {
    const config = loadConfig();
    handle = instanceEventsFromConfig(config, { logger });
    logger.info({ consul: config.consul.baseUrl, dryRun: config.dryRun }, 'instanceEvents ready');
  }
  return handle;
}

/** Pub/Sub `instance-events` → drain, deregister or restore the Consul nodes of GCE instances. */
export async function instanceEvents(event: CloudEvent<unknown>): Promise<void> {
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
    // The handler acknowledges permanent failures itself; what reaches here is worth a redelivery
    // (a configuration error too: the messages wait for the fix instead of being dropped).
    const failure = classifyError(err);
    logger.error(
      { decision: 'retry', reason: failure.message, eventId: event.id },
      'instance event failed: redelivery',
    );
    throw failure;
  }
}

functions.cloudEvent('instanceEvents', instanceEvents);
