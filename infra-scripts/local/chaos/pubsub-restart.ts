/**
 * Restarts the Pub/Sub emulator on the same address, as an outage of the service would look to its
 * clients. pstest keeps everything in memory, so the topics and subscriptions that real Pub/Sub would
 * still have are created again; messages it held are gone, which the failure suite counts.
 */
import { PubSub } from '@google-cloud/pubsub';
import { type PubsubEmulator, sleep, startPubsubEmulator } from '../launch';

export interface PubsubResources {
  projectId: string;
  topics: readonly string[];
  subscriptions: readonly { topic: string; name: string; ackDeadlineSeconds?: number }[];
}

export async function recreatePubsubResources(host: string, resources: PubsubResources): Promise<void> {
  const client = new PubSub({ projectId: resources.projectId, apiEndpoint: host, emulatorMode: true });
  try {
    for (const t of resources.topics) {
      const [exists] = await client.topic(t).exists();
      if (!exists) await client.createTopic(t);
    }
    for (const s of resources.subscriptions) {
      const [exists] = await client.subscription(s.name).exists();
      if (!exists)
        await client.topic(s.topic).createSubscription(s.name, { ackDeadlineSeconds: s.ackDeadlineSeconds });
    }
  } finally {
    await client.close();
  }
}

/**
 * Stops `current`, calls `whileDown`, waits `downMs`, starts a new emulator on its address and
 * recreates `resources`.
 */
export async function restartPubsubEmulator(
  current: PubsubEmulator,
  resources: PubsubResources,
  downMs: number,
  whileDown: () => void = () => undefined,
): Promise<PubsubEmulator> {
  const match = /^(.+):(\d+)$/.exec(current.host);
  if (!match) throw new Error(`unexpected emulator address ${current.host}`);
  await current.stop();
  whileDown();
  await sleep(downMs);
  const next = await startPubsubEmulator({ host: match[1], port: Number(match[2]) });
  await recreatePubsubResources(next.host, resources);
  return next;
}
