import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { createLogger } from '../../shared/logging';
import { startPushBridge, type PushBridge } from '../../infra-scripts/local/push-bridge';
import { restartPubsubEmulator } from '../../infra-scripts/local/chaos/pubsub-restart';
import { startPubsubEmulator, type PubsubEmulator, waitFor } from '../harness';

let emulator: PubsubEmulator;
let pubsub: PubSub;
let fn: Server;
let bridge: PushBridge;
const seen: {
  headers: IncomingHttpHeaders;
  body: {
    message: { data: string; messageId: string; attributes: Record<string, string> };
    subscription: string;
  };
}[] = [];
let failuresLeft = 2;

beforeAll(async () => {
  emulator = await startPubsubEmulator();
  pubsub = new PubSub({ projectId: 'bridge-test', apiEndpoint: emulator.host, emulatorMode: true });
  await pubsub.createTopic('instance-events');
  // The "function": fails its first two deliveries, as a function whose dependency is down would.
  fn = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: JSON.parse(raw) as (typeof seen)[number]['body'] });
      const fail = failuresLeft-- > 0;
      res.writeHead(fail ? 503 : 204).end();
    });
  });
  await new Promise<void>((r) => fn.listen(0, '127.0.0.1', r));
  bridge = await startPushBridge({
    projectId: 'bridge-test',
    emulatorHost: emulator.host,
    logger: createLogger({ name: 'push-bridge-test', level: 'error' }),
    minBackoffMs: 50,
    routes: [
      {
        topic: 'instance-events',
        subscription: 'eventarc-instance-events',
        url: `http://127.0.0.1:${(fn.address() as AddressInfo).port}/`,
      },
    ],
  });
});

afterAll(async () => {
  await bridge?.stop();
  await pubsub?.close();
  await new Promise((r) => fn?.close(r));
  await emulator?.stop();
});

test('a published message reaches the function as an Eventarc Pub/Sub CloudEvent, retried until acknowledged', async () => {
  const entry = { insertId: 'x1', protoPayload: { methodName: 'v1.compute.instances.delete' } };
  const id = await pubsub.topic('instance-events').publishMessage({ json: entry, attributes: { a: 'b' } });
  await waitFor('three deliveries', async () => seen.length >= 3, { timeoutMs: 15_000 });
  await waitFor('the bridge to count the success', async () => bridge.stats()[0]!.delivered === 1);
  expect(seen.map((s) => s.body.message.messageId)).toEqual([id, id, id]);
  const [first] = seen;
  expect(first!.headers).toMatchObject({
    'ce-specversion': '1.0',
    'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
    'ce-source': '//pubsub.googleapis.com/projects/bridge-test/topics/instance-events',
    'ce-id': id,
    'content-type': 'application/json',
  });
  expect(JSON.parse(Buffer.from(first!.body.message.data, 'base64').toString('utf8'))).toEqual(entry);
  expect(first!.body.message.attributes).toEqual({ a: 'b' });
  expect(first!.body.subscription).toBe('projects/bridge-test/subscriptions/eventarc-instance-events');
  expect(bridge.stats()[0]).toMatchObject({ delivered: 1, failed: 2, lastError: 'HTTP 503' });
  // Acknowledged: no further delivery arrives.
  await new Promise((r) => setTimeout(r, 500));
  expect(seen.length).toBe(3);
});

test('a message no delivery succeeds with ends in the dead-letter topic after maxDeliveryAttempts, counted', async () => {
  await pubsub.createTopic('poison');
  let calls = 0;
  const failing = createServer((req, res) => {
    calls++;
    req.resume();
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
  const poisonBridge = await startPushBridge({
    projectId: 'bridge-test',
    emulatorHost: emulator.host,
    logger: createLogger({ name: 'push-bridge-test', level: 'fatal' }),
    minBackoffMs: 20,
    maxBackoffMs: 50,
    maxDeliveryAttempts: 5,
    routes: [
      {
        topic: 'poison',
        subscription: 'eventarc-poison',
        url: `http://127.0.0.1:${(failing.address() as AddressInfo).port}/`,
      },
    ],
  });
  // Whoever watches the dead-letter topic (the bridge created it) sees the message there.
  const [watch] = await pubsub.topic('poison-dead-letter').createSubscription('poison-dead-letter-watch');
  const arrived: string[] = [];
  watch.on('message', (m: Message) => {
    arrived.push(m.id);
    m.ack();
  });
  try {
    const id = await pubsub.topic('poison').publishMessage({ json: { bad: true } });
    await waitFor(
      'the message to be dead-lettered',
      async () => poisonBridge.stats()[0]!.deadLettered === 1,
      {
        timeoutMs: 20_000,
      },
    );
    expect(calls).toBe(5);
    expect(poisonBridge.stats()[0]).toMatchObject({ delivered: 0, failed: 5, deadLettered: 1 });
    await waitFor('the message in the dead-letter topic', async () => arrived.includes(id));
  } finally {
    await watch.close();
    await poisonBridge.stop();
    await new Promise((r) => failing.close(r));
  }
});

test('delivery resumes after the Pub/Sub service restarts and its subscription is gone', async () => {
  // pstest forgets everything; the topic comes back (as it would on Google's side), the bridge
  // notices its stream failed and opens its subscription again.
  emulator = await restartPubsubEmulator(
    emulator,
    { projectId: 'bridge-test', topics: ['instance-events'], subscriptions: [] },
    500,
  );
  failuresLeft = 0;
  const before = bridge.stats()[0]!.delivered;
  // Published until one arrives: a message published before the subscription exists has no reader.
  await waitFor(
    'a delivery after the restart',
    async () => {
      await pubsub
        .topic('instance-events')
        .publishMessage({ json: { insertId: 'after-restart' } })
        .catch(() => undefined);
      return bridge.stats()[0]!.delivered > before;
    },
    { timeoutMs: 30_000, intervalMs: 1000 },
  );
});
