/**
 * Delivers Pub/Sub subscriptions to function URLs as CloudEvents, as Eventarc does for Pub/Sub
 * triggers: binary content mode (`ce-*` headers, body `{message, subscription}`), a 2xx acks, anything
 * else (or a timeout) is retried with exponential backoff.
 *
 *   const bridge = await startPushBridge({ projectId, emulatorHost, logger,
 *     routes: [{ topic: 'instance-events', subscription: 'eventarc-instance-events', url: 'http://127.0.0.1:8081/' }] });
 *   bridge.stats(); await bridge.stop();
 */
import { Duration, type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { z } from 'zod';
import type { Logger } from '../../shared/logging';

export const routeSchema = z.object({
  topic: z.string().min(1),
  subscription: z.string().min(1),
  url: z.url(),
});
export type Route = z.infer<typeof routeSchema>;

export interface PushBridgeOptions {
  projectId: string;
  /** `host:port` of the Pub/Sub emulator. */
  emulatorHost: string;
  routes: Route[];
  logger: Logger;
  /** Per-delivery timeout (Eventarc uses the function's timeout). */
  timeoutMs?: number;
  /** First retry delay; doubles per attempt up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Deliveries in flight at once per route (default 100). */
  maxInFlight?: number;
  /**
   * Delivery attempts before Pub/Sub moves a message to `<topic>-dead-letter` (default 10; Pub/Sub
   * allows 5-100), as the deployed triggers' subscriptions do: a poison message ends there, counted.
   */
  maxDeliveryAttempts?: number;
}

export interface RouteStats {
  subscription: string;
  url: string;
  delivered: number;
  failed: number;
  /** Messages Pub/Sub moved to the dead-letter topic after maxDeliveryAttempts. */
  deadLettered: number;
  lastError?: string;
}

export interface PushBridge {
  stats(): RouteStats[];
  stop(): Promise<void>;
}

/** Pure: the HTTP request Eventarc makes for one Pub/Sub message. */
export function cloudEventRequest(
  projectId: string,
  route: Route,
  message: { id: string; data: Buffer; attributes: Record<string, string>; publishTime: Date },
): { headers: Record<string, string>; body: string } {
  const publishTime = message.publishTime.toISOString();
  return {
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/projects/${projectId}/topics/${route.topic}`,
      'ce-id': message.id,
      'ce-time': publishTime,
    },
    body: JSON.stringify({
      message: {
        data: message.data.toString('base64'),
        messageId: message.id,
        publishTime,
        attributes: message.attributes,
      },
      subscription: `projects/${projectId}/subscriptions/${route.subscription}`,
    }),
  };
}

/** What the deliveries of one bridge share. */
interface Delivery {
  projectId: string;
  logger: Logger;
  timeoutMs: number;
  minBackoff: number;
  maxBackoff: number;
  maxDeliveryAttempts: number;
  /** Failed attempts per message id, for the backoff. */
  attempts: Map<string, number>;
  timers: Set<NodeJS.Timeout>;
  stopping: boolean;
}

/**
 * One push of a message to its route's URL: a 2xx acks it; a failure nacks it after the backoff, or
 * at once after the last attempt, when Pub/Sub dead-letters it.
 */
async function deliver(s: Delivery, route: Route, stat: RouteStats, m: Message): Promise<void> {
  const req = cloudEventRequest(s.projectId, route, {
    id: m.id,
    data: m.data,
    attributes: m.attributes,
    publishTime: m.publishTime,
  });
  let problem: string | undefined;
  try {
    const res = await fetch(route.url, {
      method: 'POST',
      headers: req.headers,
      body: req.body,
      signal: AbortSignal.timeout(s.timeoutMs),
    });
    await res.arrayBuffer();
    if (!res.ok) problem = `HTTP ${res.status}`;
  } catch (err) {
    problem = err instanceof Error ? err.message : String(err);
  }
  if (!problem) {
    stat.delivered++;
    s.attempts.delete(m.id);
    m.ack();
    return;
  }
  stat.failed++;
  stat.lastError = problem;
  const n = (s.attempts.get(m.id) ?? 0) + 1;
  s.attempts.set(m.id, n);
  // Pub/Sub counts the attempts (deliveryAttempt, set with a dead-letter policy); after the last
  // one it moves the message to `<topic>-dead-letter` instead of delivering it again.
  if (m.deliveryAttempt >= s.maxDeliveryAttempts) {
    stat.deadLettered++;
    s.attempts.delete(m.id);
    s.logger.error(
      { subscription: route.subscription, messageId: m.id, attempts: m.deliveryAttempt, problem },
      'delivery failed for the last time: the message goes to the dead-letter topic',
    );
    m.nack();
    return;
  }
  if (s.attempts.size > 10_000) s.attempts.delete(s.attempts.keys().next().value!);
  const delay = Math.min(s.maxBackoff, s.minBackoff * 2 ** (n - 1));
  s.logger.warn(
    { subscription: route.subscription, messageId: m.id, attempt: n, retryInMs: delay, problem },
    'delivery failed; will retry',
  );
  // Nacking later rather than at once is the backoff: the emulator redelivers a nacked message immediately.
  const timer = setTimeout(() => {
    s.timers.delete(timer);
    if (!s.stopping) m.nack();
  }, delay);
  s.timers.add(timer);
}

export async function startPushBridge(options: PushBridgeOptions): Promise<PushBridge> {
  const routes = z.array(routeSchema).parse(options.routes);
  const { logger } = options;
  const maxInFlight = options.maxInFlight ?? 100;
  const maxDeliveryAttempts = options.maxDeliveryAttempts ?? 10;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const delivery: Delivery = {
    projectId: options.projectId,
    logger,
    timeoutMs,
    minBackoff: options.minBackoffMs ?? 200,
    maxBackoff: options.maxBackoffMs ?? 10_000,
    maxDeliveryAttempts,
    attempts: new Map(),
    timers: new Set(),
    stopping: false,
  };
  const { timers } = delivery;
  const pubsub = new PubSub({
    projectId: options.projectId,
    apiEndpoint: options.emulatorHost,
    emulatorMode: true,
  });
  const subscriptions = new Set<Subscription>();
  const stats: RouteStats[] = [];

  for (const route of routes) {
    const topic = pubsub.topic(route.topic);
    const deadLetter = pubsub.topic(`${route.topic}-dead-letter`);
    // Created when missing, also after the emulator restarted and forgot it.
    const ensureSubscription = async () => {
      if (!(await deadLetter.exists())[0]) await deadLetter.create();
      const [exists] = await topic.subscription(route.subscription).exists();
      if (!exists)
        await topic.createSubscription(route.subscription, {
          ackDeadlineSeconds: Math.ceil(timeoutMs / 1000) + 10,
          deadLetterPolicy: {
            deadLetterTopic: deadLetter.name,
            maxDeliveryAttempts,
          },
        });
    };
    await ensureSubscription();
    const stat: RouteStats = {
      subscription: route.subscription,
      url: route.url,
      delivered: 0,
      failed: 0,
      deadLettered: 0,
    };
    stats.push(stat);
    // Every second until it works: the topic may come back later than the service.
    const reopen = () => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (delivery.stopping) return;
        ensureSubscription().then(
          () => {
            if (!delivery.stopping) subscriptions.add(open());
          },
          (e: unknown) => {
            logger.warn({ err: e, subscription: route.subscription }, 'cannot reopen yet; retrying');
            reopen();
          },
        );
      }, 1000);
      timers.add(timer);
    };
    const open = (): Subscription => {
      // Eventarc pushes as many messages at once as the function takes (2nd gen: 80 per instance,
      // several instances); a low cap would queue events behind slow ones (a force-leave takes seconds).
      // Closing nacks what is in hand and waits 2 s at most (the default waits for the ack flush, up to minutes).
      const sub = pubsub.subscription(route.subscription, {
        flowControl: { maxMessages: maxInFlight, allowExcessMessages: false },
        closeOptions: { behavior: 'NACK', timeout: Duration.from({ seconds: 2 }) },
      });
      sub.on('message', (m: Message) => void deliver(delivery, route, stat, m));
      // A stream that failed for good (the emulator restarted, the subscription vanished) is opened
      // again, so delivery resumes instead of stopping silently.
      sub.once('error', (err: Error) => {
        logger.error({ err, subscription: route.subscription }, 'subscription error; reopening');
        subscriptions.delete(sub);
        void sub.close().catch(() => undefined);
        reopen();
      });
      return sub;
    };
    subscriptions.add(open());
    logger.info(
      { topic: route.topic, subscription: route.subscription, url: route.url },
      'push route active',
    );
  }

  return {
    stats: () => stats.map((s) => ({ ...s })),
    async stop() {
      delivery.stopping = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([...subscriptions].map((s) => s.close()));
      await pubsub.close();
    },
  };
}
