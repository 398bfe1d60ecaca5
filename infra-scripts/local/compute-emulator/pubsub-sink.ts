import { PubSub } from '@google-cloud/pubsub';
import type { LogEntry } from './audit-log';

export interface PubsubSinkOptions {
  projectId: string;
  topic: string;
  /** Which entries the sink forwards; default: what the deployed sink's filter lets through. */
  carries?: (entry: LogEntry) => boolean;
  /** `host:port` of the Pub/Sub emulator; defaults to PUBSUB_EMULATOR_HOST. */
  emulatorHost?: string;
}

/**
 * The deployed sink's filter (infra-scripts/deploy/steps/pubsub.ts `sinkSteps`) on the fields the
 * emulator sets: `resource.type="gce_instance"`, the activity or system_event audit log, a
 * `compute.instances.` method. A group's own entries (`gce_instance_group_manager`) stay in the log.
 */
export function sinkCarries(entry: LogEntry): boolean {
  const resource = entry.resource as { type?: unknown } | undefined;
  const payload = entry.protoPayload as { methodName?: unknown } | undefined;
  return (
    resource?.type === 'gce_instance' &&
    typeof entry.logName === 'string' &&
    /\/logs\/cloudaudit\.googleapis\.com%2F(activity|system_event)$/.test(entry.logName) &&
    typeof payload?.methodName === 'string' &&
    payload.methodName.includes('compute.instances.')
  );
}

/**
 * Publishes audit entries as a log sink does: the LogEntry as JSON in the message data, with the
 * entry's timestamp in the `logging.googleapis.com/timestamp` attribute.
 */
export function pubsubSink(options: PubsubSinkOptions): {
  write: (entry: LogEntry) => Promise<void>;
  close: () => Promise<void>;
} {
  const pubsub = new PubSub({
    projectId: options.projectId,
    ...(options.emulatorHost ? { apiEndpoint: options.emulatorHost, emulatorMode: true } : {}),
  });
  // One entry per publish, at once: the client's default batching would hold each entry up to 10 ms.
  const topic = pubsub.topic(options.topic, { batching: { maxMessages: 1 } });
  const carries = options.carries ?? sinkCarries;
  return {
    async write(entry) {
      if (!carries(entry)) return;
      const timestamp = typeof entry.timestamp === 'string' ? entry.timestamp : new Date().toISOString();
      await topic.publishMessage({
        data: Buffer.from(JSON.stringify(entry)),
        attributes: { 'logging.googleapis.com/timestamp': timestamp },
      });
    },
    /** Flushes what is queued, for 5 s at most: the emulator may be gone already at teardown. */
    async close() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        topic.flush(),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000))),
      ]);
      clearTimeout(timer);
      await pubsub.close();
    },
  };
}
