import { services } from '../../shared/contract';
import { createLogger } from '../../shared/logging';
import { cachedAsync } from '../lib/cache';
import { parseListenArgs, onTermination } from '../lib/cli';
import { consulAgentFromEnv, readAgentSelf } from '../lib/consul-identity';
import { createMetadataClient } from '../lib/gce-metadata';
import { createGracefulServer } from '../lib/graceful-server';
import { createBackendHandler } from './app';

/** backend: `node main.js [--host H] [--port 8080]`; answers its instance metadata as JSON. */
async function main(): Promise<void> {
  const logger = createLogger({ name: 'backend' });
  const args = parseListenArgs(process.argv.slice(2), { host: '0.0.0.0', port: services.backend.port });
  const metadata = createMetadataClient();
  const agent = consulAgentFromEnv();
  const handler = createBackendHandler({
    instance: metadata.identity,
    consulNode: cachedAsync(() => readAgentSelf(agent), 30_000),
    logger,
  });
  const server = createGracefulServer(handler, (err) => logger.error({ err }, 'request failed'));
  const port = await server.listen(args.host, args.port);
  logger.info({ host: args.host, port }, 'backend listening');
  onTermination(async (signal) => {
    logger.info({ signal }, 'draining in-flight requests');
    await server.shutdown();
    logger.info('backend stopped');
  });
}

main().catch((err: unknown) => {
  createLogger({ name: 'backend' }).fatal({ err }, 'backend failed to start');
  process.exit(1);
});
