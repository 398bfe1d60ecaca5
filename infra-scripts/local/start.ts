// `npm start`: the local sandbox. For now: a 3-server Consul cluster (ACLs, gossip encryption) and the
// Pub/Sub emulator with the orchestrator's topics; prints how to reach them and stops all on Ctrl-C.
import { PubSub } from '@google-cloud/pubsub';
import { createLogger } from '../../shared/logging';
import { startConsulCluster, startPubsubEmulator, stopAllProcesses } from './launch';

// Google's clients must not look for a real metadata server here.
process.env.METADATA_SERVER_DETECTION = 'none';
const log = createLogger({ name: 'sandbox' });
const topics = ['instance-events', 'scaling-alerts', 'health-sweep'];

async function main(): Promise<void> {
  const prefix = process.env.SANDBOX_PREFIX ?? '127.0.10';
  log.info({ prefix }, 'starting 3 Consul servers');
  const consul = await startConsulCluster({ servers: 3, prefix });
  log.info('starting the Pub/Sub emulator');
  const emulator = await startPubsubEmulator({ host: `${prefix}.1`, port: 8085 });
  const pubsub = new PubSub({ projectId: 'sandbox-project', apiEndpoint: emulator.host, emulatorMode: true });
  for (const name of topics) await pubsub.createTopic(name);
  await pubsub.close();

  process.stdout.write(
    [
      '',
      'Sandbox is up:',
      `  Consul API      ${consul.servers[0]!.httpAddr}   (export CONSUL_HTTP_ADDR=${consul.servers[0]!.httpAddr})`,
      `  Consul DNS      dig @${consul.servers[0]!.ip} -p 8600 consul.service.consul`,
      `  Consul token    export CONSUL_HTTP_TOKEN=${consul.token}   (management token of this throwaway sandbox)`,
      `  Pub/Sub         export PUBSUB_EMULATOR_HOST=${emulator.host}   topics: ${topics.join(', ')}`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );

  const shutdown = async () => {
    log.info('stopping the sandbox');
    await stopAllProcesses();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch(async (error: unknown) => {
  log.error({ err: error }, 'sandbox failed to start');
  await stopAllProcesses();
  process.exit(1);
});
