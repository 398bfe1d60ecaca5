import { services } from '../../shared/contract';
import { createLogger } from '../../shared/logging';
import { parseListenArgs, onTermination } from '../lib/cli';
import { createMetadataClient } from '../lib/gce-metadata';
import { createGracefulServer } from '../lib/graceful-server';
import { createFrontendHandler } from './app';
import { createResolve, fetchUpstream } from './upstream';

/**
 * frontend: `node main.js [--host H] [--port 80] [--dns host:port]`. Without `--dns` (or
 * ILB_DNS_SERVER) names go through the system resolver, i.e. dnsmasq on the image.
 */
async function main(): Promise<void> {
  const logger = createLogger({ name: 'frontend' });
  const args = parseListenArgs(process.argv.slice(2), { host: '0.0.0.0', port: services.frontend.port }, [
    'dns',
  ]);
  const metadata = createMetadataClient();
  const handler = createFrontendHandler({
    zone: async () => (await metadata.identity()).zone,
    resolve: createResolve(args.dns ?? (process.env.ILB_DNS_SERVER?.trim() || undefined)),
    fetchUpstream: (address, port, method) => fetchUpstream(address, port, method),
    now: () => Math.round(performance.now()),
    logger,
  });
  const server = createGracefulServer(handler, (err) => logger.error({ err }, 'request failed'));
  const port = await server.listen(args.host, args.port);
  logger.info({ host: args.host, port }, 'frontend listening');
  onTermination(async (signal) => {
    logger.info({ signal }, 'draining in-flight requests');
    await server.shutdown();
  });
}

main().catch((err: unknown) => {
  createLogger({ name: 'frontend' }).fatal({ err }, 'frontend failed to start');
  process.exit(1);
});
