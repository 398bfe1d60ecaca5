import * as functions from '@google-cloud/functions-framework';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { createInstancesApi } from '../../shared/compute/instances';
import { loadConfig } from '../../shared/config';
import { createConsulClient } from '../../shared/consul/client';
import { createInstanceEventsHandler, type MessageOutcome } from '../../shared/instance-events/execute';
import { messagePublishedType } from '../../shared/instance-events/schema';
import { createLedger } from '../../shared/ledger/ledger';
import { createLogger } from '../../shared/logging';

const logger = createLogger({ name: 'instanceEvents' });
let handle: ((data: unknown) => Promise<MessageOutcome>) | undefined;

// Built on the first event, not at load: keeps the cold start to loading code.
function handler() {
  if (!handle) {
    const config = loadConfig();
    const consul = createConsulClient(config.consul);
    handle = createInstanceEventsHandler({
      consul,
      instances: createInstancesApi(config.compute),
      ledger: createLedger({
        kv: consul,
        prefix: `${config.kvPrefix}ledger/instance-events/`,
        inProgressTtlMs: config.ledger.inProgressTtlMs,
        retentionMs: config.ledger.retentionMs,
      }),
      logger,
      recordPrefix: `${config.kvPrefix}instance-events/instances/`,
      agentPort: config.consul.agentPort,
      dryRun: config.dryRun,
      project: config.project,
    });
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
    logger.error(
      { decision: 'retry', reason: (err as Error).message, eventId: event.id },
      'instance event failed: redelivery',
    );
    throw err;
  }
}

functions.cloudEvent('instanceEvents', instanceEvents);
