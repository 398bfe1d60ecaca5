/**
 * What the tests of the health-sweep entry points share (the watcher tests and the attack suite):
 * a one-server Consul with ACLs and the Compute emulator, a zonal group whose members have passing
 * nodes, and the entry points served by the Functions Framework on a local port.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import { clients, eventually, project, startTestEmulator } from './compute-emulator-helpers';
import { registerMember, sweepToken } from './health-sweep.support';

export interface SweepWorld {
  cluster: ConsulCluster;
  server: ConsulAgent;
  /** A management-token client. */
  admin: ConsulClient;
  emu: RunningEmulator;
  /** Serves an entry point (functions/health-sweep must be loaded); its base URL. */
  serve(target: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startSweepWorld(): Promise<SweepWorld> {
  const cluster = await startConsulCluster({ servers: 1 });
  const server = cluster.servers[0] as ConsulAgent;
  const admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: cluster.token }).consul,
  );
  const { emu } = await startTestEmulator();
  const servers: Server[] = [];
  return {
    cluster,
    server,
    admin,
    emu,
    async serve(target) {
      const s = getTestServer(target);
      servers.push(s);
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(s.address() as AddressInfo).port}/`;
    },
    async stop() {
      for (const s of servers) await new Promise((resolve) => s.close(resolve));
      await emu.stop();
      await cluster.stop();
    },
  };
}

/** A zonal group of `size` RUNNING members, each with a passing node as its agent would register it. */
export async function groupWithPassingNodes(
  world: Pick<SweepWorld, 'emu' | 'admin'>,
  g: { zone: string; name: string; size: number },
): Promise<void> {
  const c = clients(world.emu.port);
  try {
    const [op] = await c.igms.insert({
      project,
      zone: g.zone,
      instanceGroupManagerResource: {
        name: g.name,
        baseInstanceName: 'backend',
        instanceTemplate: 'global/instanceTemplates/backend-tmpl',
        targetSize: g.size,
      },
    });
    await c.zoneOps.wait({ project, zone: g.zone, operation: (op.latestResponse as { name: string }).name });
    await eventually(async () => {
      const [members] = await c.igms.listManagedInstances({
        project,
        zone: g.zone,
        instanceGroupManager: g.name,
      });
      if (members.length !== g.size || members.some((m) => m.instanceStatus !== 'RUNNING')) return false;
      for (const m of members) {
        const name = /instances\/([^/]+)$/.exec(m.instance ?? '')?.[1] ?? '';
        const member = { name, id: String(m.id), zone: g.zone, group: g.name, role: 'backend' };
        await registerMember(world.admin, member, project);
      }
      return true;
    }, 30_000);
  } finally {
    await c.close();
  }
}

/** A Cloud Scheduler tick on the health-sweep topic, as Eventarc delivers it. */
export function schedulerTick(url: string, id = 'tick-1'): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-id': id,
      'ce-specversion': '1.0',
      'ce-source': `//pubsub.googleapis.com/projects/${project}/topics/health-sweep`,
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
    },
    body: JSON.stringify({ message: { data: Buffer.from('tick').toString('base64'), messageId: id } }),
  });
}

/**
 * Configures the health-sweep entry points as the deploy does (the sweep's own token, the emulator
 * for Compute and Monitoring, one watched group) and registers them with the framework.
 */
export async function loadSweepEntries(
  world: Pick<SweepWorld, 'server' | 'emu'>,
  group: { zone: string; name: string },
  thresholds: Record<string, unknown> = {},
): Promise<void> {
  Object.assign(process.env, {
    CONSUL_HTTP_ADDR: world.server.httpAddr,
    CONSUL_HTTP_TOKEN: await sweepToken(world.server),
    COMPUTE_API_ENDPOINT: world.emu.url,
    GOOGLE_CLOUD_PROJECT: project,
    LOG_LEVEL: 'silent',
    HEALTH_SWEEP_CONFIG_JSON: JSON.stringify({
      groups: [{ project, ...group, role: 'backend' }],
      thresholds,
    }),
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../../functions/health-sweep');
}
