/**
 * MIG instances as real role instances (issue-3 launcher: Consul agent + backend app from packer/),
 * driven through the real Compute client. Needs `npm run build` (the apps run from dist/).
 */
import { createLogger } from '../../shared/logging';
import { startComputeEmulator, type RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { LauncherDriver } from '../../infra-scripts/local/compute-emulator/launcher-driver';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { randomLoopbackPrefix, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { setupRoleTokens } from '../../infra-scripts/local/scenarios/acl';
import { clients, project } from './compute-emulator-helpers';
import type { CatalogNode } from '../../shared/consul';
import { nodeMetaKeys, services } from '../../shared/contract';

jest.setTimeout(240_000);

const zone = 'us-central1-a';
const prefix = randomLoopbackPrefix();
let cluster: ConsulCluster;
let md: MetadataServer;
let emu: RunningEmulator;
let driver: LauncherDriver;
let c: ReturnType<typeof clients>;

async function backendNodes(): Promise<CatalogNode[]> {
  return cluster.servers[0]!.consul.catalog.nodes({ nodeMeta: { [nodeMetaKeys.role]: 'backend' } }).catch(
    () => [],
  );
}

async function passingBackends(): Promise<string[]> {
  const entries = await cluster.servers[0]!.consul.health.service(services.backend.name, {
    passing: true,
  }).catch(() => []);
  return entries.map((e) => e.Node.Node).sort();
}

async function managed() {
  const [items] = await c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'backend-mig' });
  return items;
}

beforeAll(async () => {
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 9169 });
  // The instances log in with their identity tokens (no agent token in their metadata).
  await setupRoleTokens(cluster, { metadata: md, project });
  const logger = createLogger({ name: 'compute-emulator-test', level: process.env.LOG_LEVEL ?? 'warn' });
  driver = new LauncherDriver({
    metadata: md,
    logger,
    shutdownTimeoutMs: 20_000,
    projectAttributes: {
      'consul-servers': cluster.joinAddrs.join(' '),
      'consul-gossip-key': cluster.gossipKey,
      'ilb-drain-seconds': '1',
    },
  });
  emu = await startComputeEmulator({
    project,
    zones: [zone],
    driver,
    logger,
    addressPrefix: `${prefix}.`,
    shutdownTimeoutMs: 20_000,
    reconcileIntervalMs: 500,
  });
  emu.emulator.addTemplate('backend-tmpl', { labels: { role: 'backend' }, tags: { items: ['backend'] } });
  c = clients(emu.port);
});

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await md?.stop();
  await cluster?.stop();
});

test('a MIG boots backend instances that register in Consul with their GCE identity', async () => {
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'backend-mig',
      baseInstanceName: 'backend',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 2,
    },
  });
  await waitFor('two passing backends', async () => (await passingBackends()).length === 2, {
    timeoutMs: 120_000,
  });
  const items = await managed();
  const nodes = await backendNodes();
  for (const m of items) {
    const node = nodes.find((n) => n.name === m.name);
    expect(node?.meta).toMatchObject({
      [nodeMetaKeys.instanceId]: String(m.id),
      [nodeMetaKeys.zone]: zone,
      [nodeMetaKeys.group]: 'backend-mig',
    });
  }
});

test('deleteInstances runs the shutdown script: the node leaves Consul by itself', async () => {
  const [victim, keeper] = await managed();
  await c.igms.deleteInstances({
    project,
    zone,
    instanceGroupManager: 'backend-mig',
    instanceGroupManagersDeleteInstancesRequestResource: { instances: [victim!.instance!] },
  });
  await waitFor(
    'the deleted node gone from the catalog',
    async () => !(await backendNodes()).some((n) => n.name === victim!.name),
    {
      timeoutMs: 60_000,
    },
  );
  expect(await passingBackends()).toEqual([keeper!.name]);
  // The instance is gone once its shutdown script has finished and its processes stopped.
  await waitFor(
    'the instance stopped',
    async () => (await managed()).length === 1 && driver.names().length === 1,
    {
      timeoutMs: 30_000,
    },
  );
  expect(driver.names()).toEqual([keeper!.name]);
});

test('hang freezes an instance: GCE still says RUNNING while Consul sees it fail; unhang brings it back', async () => {
  const [target] = await managed();
  const control = (action: string) =>
    fetch(`${emu.url}/emulator/v1/projects/${project}/zones/${zone}/instances/${target!.name}/${action}`, {
      method: 'POST',
    });
  expect((await control('hang')).status).toBe(200);
  await waitFor(
    'the frozen backend failing its check',
    async () => !(await passingBackends()).includes(target!.name!),
    {
      timeoutMs: 30_000,
    },
  );
  const [inst] = await c.instances.get({ project, zone, instance: target!.name! });
  expect(inst.status).toBe('RUNNING');
  expect((await control('unhang')).status).toBe(200);
  await waitFor(
    'the thawed backend passing again',
    async () => (await passingBackends()).includes(target!.name!),
    {
      timeoutMs: 30_000,
    },
  );
});

test('preemption leaves a stale node behind; the MIG recreates the name and the new id registers', async () => {
  const [victim] = await managed();
  const res = await fetch(
    `${emu.url}/emulator/v1/projects/${project}/zones/${zone}/instances/${victim!.name}/preempt`,
    { method: 'POST' },
  );
  expect(res.status).toBe(200);
  await waitFor(
    'the same name registered with a new instance id',
    async () => {
      const node = (await backendNodes()).find((n) => n.name === victim!.name);
      const [now] = await managed();
      return (
        node !== undefined && now!.id !== victim!.id && node.meta[nodeMetaKeys.instanceId] === String(now!.id)
      );
    },
    { timeoutMs: 150_000 },
  );
});
