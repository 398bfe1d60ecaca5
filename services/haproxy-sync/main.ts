import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';

import { createLogger } from '../../shared/logging';
import { coalesce } from './coalesce';
import { createSync, effectiveRender, install, report } from './sync';
import type { RoutingPolicy } from './gate';
import { consulAgentFromEnv } from '../lib/consul-identity';
import { aliveMembers, parseCidrs } from '../lib/proven-members';

/**
 * haproxy-sync: a long-running daemon (haproxy-sync.service) that brings HAProxy to each render of
 * haproxy.cfg by consul-template: server changes through the runtime API, a checked hitless reload
 * (master-worker) only for structural ones.
 *   node main.js --config /etc/haproxy/haproxy.cfg --admin-socket S --master-socket M [--haproxy BIN]
 *   node main.js --prepare --config /etc/haproxy/haproxy.cfg [--haproxy BIN]   (before HAProxy starts)
 * It learns of a render from inotify on the config's directory (consul-template renames a new file
 * into place), of anything else (a restarted HAProxy, a missed event) from a resync every
 * --resync-ms, and SIGHUP runs it at once. HAProxy runs `<config>.applied`, which only this program
 * writes, and only with a render that validated and passed `haproxy -c`: a bad render never
 * reaches the running HAProxy, not even when it reloads or restarts for another reason.
 */
const argsSchema = z.object({
  config: z.string().min(1),
  'admin-socket': z.string().min(1).optional(),
  'master-socket': z.string().min(1).optional(),
  haproxy: z.string().min(1).default('/usr/sbin/haproxy'),
  prepare: z.boolean().default(false),
  'resync-ms': z.coerce.number().int().min(100).max(600_000).default(2_000),
  'min-reload-interval-ms': z.coerce.number().int().min(0).max(600_000).default(2_000),
  // The backend tier's subnets (ILB_BACKEND_CIDRS, from the instance's `ilb-backend-cidrs` metadata).
  'backend-cidrs': z.string().max(4096).optional(),
  // Off only for a sandbox whose stand-in backends are catalog entries, not agents.
  'require-members': z.enum(['true', 'false']).default('true'),
});

const logger = createLogger({ name: 'haproxy-sync' });

/**
 * The routing policy, asked on every run: members from the local agent's LAN pool (a gossip view no
 * catalog write can forge). With no answer for a minute nothing is a member: no server is added, and
 * HAProxy keeps serving what it has only through the applied file until the next render.
 */
function routingPolicy(args: z.infer<typeof argsSchema>): () => Promise<RoutingPolicy> {
  const cidrs = args['backend-cidrs'] ? parseCidrs(args['backend-cidrs']) : null;
  if (!cidrs)
    logger.warn('no --backend-cidrs (ILB_BACKEND_CIDRS): backend addresses are not checked against a subnet');
  if (args['require-members'] === 'false') return () => Promise.resolve({ cidrs, members: null });
  const members = aliveMembers(consulAgentFromEnv(), logger);
  return async () => ({ cidrs, members: await members() });
}

function daemon(args: z.infer<typeof argsSchema>, adminSocket: string, masterSocket: string): void {
  const { sync } = createSync(logger, {
    config: args.config,
    haproxy: args.haproxy,
    adminSocket,
    masterSocket,
    minReloadIntervalMs: args['min-reload-interval-ms'],
    policy: routingPolicy(args),
  });
  let rendered = true;
  let retry: NodeJS.Timeout | undefined;
  const runs = coalesce(
    async () => {
      const quiet = !rendered;
      rendered = false;
      const again = await sync(quiet);
      if (again !== undefined && !retry) {
        retry = setTimeout(() => {
          retry = undefined;
          runs.poke();
        }, again);
      }
    },
    (err) => logger.error({ err }, 'sync failed; the next render or resync tries again'),
  );
  const onRender = () => {
    rendered = true;
    runs.poke();
  };

  // The directory, not the file: consul-template replaces the file by a rename.
  const base = path.basename(args.config);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.dirname(args.config), (_event, name) => {
      if (name === base) onRender();
    });
    watcher.on('error', (err) => logger.warn({ err }, 'watch failed; resync only'));
  } catch (err) {
    logger.warn({ err }, 'cannot watch the config directory; resync only');
  }
  const ticker = setInterval(() => runs.poke(), args['resync-ms']);
  process.on('SIGHUP', onRender);
  const stop = () => {
    watcher?.close();
    clearInterval(ticker);
    clearTimeout(retry);
    // A run in progress finishes: a reload is never left half-done.
    void runs.idle().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  logger.info({ config: args.config, resyncMs: args['resync-ms'] }, 'haproxy-sync watching renders');
  onRender();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      'admin-socket': { type: 'string' },
      'master-socket': { type: 'string' },
      haproxy: { type: 'string' },
      prepare: { type: 'boolean' },
      'resync-ms': { type: 'string' },
      'min-reload-interval-ms': { type: 'string' },
      'backend-cidrs': { type: 'string' },
      'require-members': { type: 'string' },
    },
  });
  // The unit's EnvironmentFile (/etc/ilb/instance.env) carries the tier's settings.
  const fromEnv = {
    'backend-cidrs': process.env.ILB_BACKEND_CIDRS || undefined,
    'require-members': process.env.ILB_ROUTE_MEMBERS_ONLY || undefined,
  };
  const args = argsSchema.parse({ ...fromEnv, ...values });
  if (args.prepare) {
    // haproxy.service's ExecStartPre: HAProxy starts only from a validated, checked render.
    const render = effectiveRender(await readFile(args.config, 'utf8'), await routingPolicy(args)());
    report(logger, render);
    if (!(await install(logger, args, render.loadable))) process.exit(1);
    return;
  }
  const adminSocket = args['admin-socket'];
  const masterSocket = args['master-socket'];
  if (!adminSocket || !masterSocket) throw new Error('--admin-socket and --master-socket are required');
  daemon(args, adminSocket, masterSocket);
}

main().catch((err: unknown) => {
  logger.error({ err }, 'haproxy-sync failed');
  process.exit(1);
});
