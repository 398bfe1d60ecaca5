import { z } from 'zod';

import { services } from '../../shared/contract';
import { createLogger } from '../../shared/logging';
import { parseListenArgs, onTermination } from '../lib/cli';
import { consulAgentFromEnv } from '../lib/consul-identity';
import { createMetadataClient } from '../lib/gce-metadata';
import { createGracefulServer } from '../lib/graceful-server';
import { aliveMembers, parseCidrs } from '../lib/proven-members';
import { createFrontendHandler } from './app';
import { provenResolve, skipLogger } from './proven';
import { createResolve, fetchUpstream } from './upstream';

// The HAProxy tier's subnets (ILB_HAPROXY_CIDRS, from the instance's `ilb-haproxy-cidrs` metadata).
const cidrsSchema = z
  .string()
  .max(4096)
  .optional()
  .transform((list) => (list?.trim() ? parseCidrs(list) : null));

/**
 * frontend: `node main.js [--host H] [--port 80] [--dns host:port] [--haproxy-cidrs LIST]`. Without
 * `--dns` (or ILB_DNS_SERVER) names go through the system resolver, i.e. dnsmasq on the image. Only
 * answers that are alive members of the local agent's gossip pool (CONSUL_HTTP_ADDR, with the
 * agent's read-only default token) inside the HAProxy subnets are used (proven.ts).
 */
async function main(): Promise<void> {
  const logger = createLogger({ name: 'frontend' });
  const args = parseListenArgs(process.argv.slice(2), { host: '0.0.0.0', port: services.frontend.port }, [
    'dns',
    'haproxy-cidrs',
  ]);
  const cidrs = cidrsSchema.parse(args['haproxy-cidrs'] ?? process.env.ILB_HAPROXY_CIDRS);
  if (!cidrs)
    logger.warn('no --haproxy-cidrs (ILB_HAPROXY_CIDRS): HAProxy addresses are not checked against a subnet');
  const members = aliveMembers(consulAgentFromEnv(), logger);
  const metadata = createMetadataClient();
  const handler = createFrontendHandler({
    zone: async () => (await metadata.identity()).zone,
    resolve: provenResolve(
      createResolve(args.dns ?? (process.env.ILB_DNS_SERVER?.trim() || undefined)),
      async () => ({ cidrs, members: new Set((await members()).values()) }),
      skipLogger(logger),
    ),
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
