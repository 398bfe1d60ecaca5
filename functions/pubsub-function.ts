import type { CloudEvent } from '@google-cloud/functions-framework';
import { classifyError } from '../shared/errors';
import { messagePublishedType } from '../shared/pubsub';
import type { Logger } from '../shared/logging';

/**
 * The shell every Pub/Sub-triggered function shares: the handler is built on the first event, not at
 * load (the cold start only loads code); another event type is acknowledged with a log; a failure
 * that reaches here is worth a redelivery (the handlers acknowledge permanent ones themselves, and a
 * configuration error keeps the messages until it is fixed instead of dropping them).
 */
export function pubsubFunction(
  name: string,
  logger: Logger,
  build: () => (data: unknown) => Promise<unknown>,
): (event: CloudEvent<unknown>) => Promise<void> {
  let handle: ((data: unknown) => Promise<unknown>) | undefined;
  return async (event) => {
    if (event.type !== messagePublishedType) {
      logger.warn(
        { decision: 'ignored', reason: `event type ${String(event.type).slice(0, 200)}` },
        'not a Pub/Sub message: acknowledged',
      );
      return;
    }
    try {
      handle ??= build();
      await handle(event.data);
    } catch (err) {
      const failure = classifyError(err);
      logger.error(
        { decision: 'retry', reason: failure.message, eventId: event.id },
        `${name} failed: redelivery`,
      );
      throw failure;
    }
  };
}
