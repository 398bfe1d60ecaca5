import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PubSub } from '@google-cloud/pubsub';
import { createLogger } from '../../shared/logging';
import { startPushBridge, type PushBridge } from '../../infra-scripts/local/push-bridge';
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
