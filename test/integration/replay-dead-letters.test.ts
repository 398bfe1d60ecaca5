import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { parseReplayArgs, replayDeadLetters } from '../../infra-scripts/ops/replay-dead-letters';
import { startPubsubEmulator, type PubsubEmulator } from '../harness';

// The deploy's layout for one function topic: the topic, its dead-letter topic and the hold
// subscription that keeps dead letters (infra-scripts/deploy).
const project = 'replay-test';
let emulator: PubsubEmulator;
let pubsub: PubSub;

beforeAll(async () => {
  emulator = await startPubsubEmulator();
  pubsub = new PubSub({ projectId: project, apiEndpoint: emulator.host, emulatorMode: true });
});
afterAll(async () => {
  await pubsub?.close();
  await emulator?.stop();
});

async function layout(topic: string) {
  const [main] = await pubsub.createTopic(topic);
  const [dead] = await pubsub.createTopic(`${topic}-dead-letter`);
  await dead.createSubscription(`${topic}-dead-letter-hold`);
  const [watch] = await main.createSubscription(`${topic}-watch`);
  return { dead, watch };
}

/** Everything `sub` delivers until it stays quiet for a second. */
async function drain(sub: ReturnType<PubSub['subscription']>): Promise<Message[]> {
  const got: Message[] = [];
  await new Promise<void>((resolve) => {
    let t = setTimeout(resolve, 1500);
    sub.on('message', (m: Message) => {
      got.push(m);
      m.ack();
      clearTimeout(t);
      t = setTimeout(resolve, 1000);
    });
  });
  sub.removeAllListeners('message');
  await sub.close();
  return got;
}

test('replays every held message onto its topic, without the dead-letter attributes, and empties the hold', async () => {
  const { dead, watch } = await layout('instance-events');
  for (const n of [1, 2, 3]) {
    await dead.publishMessage({
      json: { insertId: `e${n}` },
      attributes: { origin: 'sink', CloudPubSubDeadLetterSourceDeliveryCount: '10' },
    });
  }
  const lines: string[] = [];
  const summary = await replayDeadLetters(
    parseReplayArgs(['--project', project, '--topic', 'instance-events', '--idle-ms', '1500']),
    { pubsub, progress: (l) => lines.push(l) },
  );
  expect(summary).toMatchObject({ held: 3, replayed: 3, failed: 0, dryRun: false });
  const replayed = await drain(watch);
  expect(
    replayed.map((m) => (JSON.parse(m.data.toString()) as { insertId: string }).insertId).sort(),
  ).toEqual(['e1', 'e2', 'e3']);
  for (const m of replayed) expect(m.attributes).toEqual({ origin: 'sink' });
  expect(lines.at(-1)).toBe('3 held, 3 replayed, 0 failed, 0 duplicate deliveries');

  // The hold subscription was acknowledged: a second run finds nothing new to publish.
  const again = await replayDeadLetters(
    parseReplayArgs(['--project', project, '--topic', 'instance-events', '--idle-ms', '1500']),
    { pubsub, progress: () => undefined },
  );
  expect(again.replayed).toBe(0);
  expect(await drain(pubsub.subscription('instance-events-watch'))).toHaveLength(0);
});

test('a dry run publishes nothing and leaves the messages held', async () => {
  const { dead, watch } = await layout('scaling-alerts');
  await dead.publishMessage({ data: Buffer.from('{"incident":{}}') });
  const args = ['--project', project, '--topic', 'scaling-alerts', '--idle-ms', '1500'];
  const dry = await replayDeadLetters(parseReplayArgs([...args, '--dry-run']), {
    pubsub,
    progress: () => undefined,
  });
  expect(dry).toMatchObject({ held: 1, replayed: 0, dryRun: true });
  expect(await drain(watch)).toHaveLength(0);
  const real = await replayDeadLetters(parseReplayArgs(args), { pubsub, progress: () => undefined });
  expect(real).toMatchObject({ held: 1, replayed: 1 });
});

test('refuses bad arguments before touching Pub/Sub', async () => {
  expect(() => parseReplayArgs(['--project', 'x', '--topic', 'instance-events'])).toThrow(/--project/);
  expect(() => parseReplayArgs(['--project', 'my-project', '--topic', 'goog-x'])).toThrow(/--topic/);
  expect(() => parseReplayArgs(['--project', 'my-project', '--topic', 't1', '--force'])).toThrow(
    /unknown argument/,
  );
  // The CLI (as built by npm run build) exits 2 with its usage on bad arguments.
  const cli = path.resolve('dist/infra-scripts/ops/replay-dead-letters.js');
  await access(cli).catch(() =>
    promisify(execFile)(path.resolve('node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json']),
  );
  const run = promisify(execFile)(process.execPath, [cli, '--project', 'x']).catch(
    (e: { code?: number; stderr?: string }) => e,
  );
  const result = (await run) as { code?: number; stderr?: string };
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/usage: replay-dead-letters/);
});
