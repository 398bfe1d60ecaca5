import type { CloudEvent } from '@google-cloud/functions-framework';
import { classifyError } from '../shared/errors';
import type { Logger } from '../shared/logging';
import type { Decision } from '../shared/outcome';
import { messagePublishedType } from '../shared/pubsub';
import { heartbeatFromEnv, type Heartbeat } from './heartbeat';
import { prepared } from './start';

export interface PubsubFunctionOptions {
  /**
   * Acknowledge a failure with an ERROR line (`failed`) instead of throwing it for a redelivery:
   * for a scheduler's tick, whose next tick does the same work afresh.
   */
  ackOnFailure?: boolean;
  /** Replaces the heartbeat built from the environment (tests). */
  heartbeat?: (name: string, logger: Logger) => Heartbeat;
}

/**
 * The shell every Pub/Sub-triggered function shares: the handler is built at load when this process
 * serves `name` (start.ts), else on the first event; another event type is acknowledged with a log;
 * a failure that reaches here is worth a redelivery (the handlers acknowledge permanent ones
 * themselves) unless `ackOnFailure`. A run that completes writes the function's heartbeat (a failed
 * one does not: that is what the heartbeat alert watches). Everything is awaited before the answer.
 */
export function pubsubFunction(
  name: string,
  logger: Logger,
  build: () => (data: unknown) => Promise<unknown>,
  options: PubsubFunctionOptions = {},
): (event: CloudEvent<unknown>) => Promise<void> {
  const built = prepared([name], logger, () => ({
    handle: build(),
    beat: (options.heartbeat ?? heartbeatFromEnv)(name, logger),
  }));
  return async (event) => {
    const eventId = String(event.id).slice(0, 200);
    if (event.type !== messagePublishedType) {
      logger.warn(
        {
          decision: 'ignored' satisfies Decision,
          reason: `event type ${String(event.type).slice(0, 200)}`,
          eventId,
        },
        'not a Pub/Sub message: acknowledged',
      );
      return;
    }
    try {
      const { handle, beat } = built();
      await handle(event.data);
      await beat();
    } catch (err) {
      const failure = classifyError(err);
      if (options.ackOnFailure) {
        logger.error(
          { decision: 'failed' satisfies Decision, reason: failure.message, eventId },
          `${name} failed: acknowledged`,
        );
        return;
      }
      logger.error(
        { decision: 'retry' satisfies Decision, reason: failure.message, eventId },
        `${name} failed: redelivery`,
      );
      throw failure;
    }
  };
}
