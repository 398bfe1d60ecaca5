/**
 * Consul agents keep node maintenance across restarts. The images' boot (ilb-drain.sh --boot,
 * ilb-drain.service's start) lifts exactly the maintenance the last shutdown set, told by its
 * reason, and leaves an operator's. A real agent from packer/ files restarts from its data dir,
 * as after a reboot.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import {
  randomLoopbackPrefix,
  startConsulCluster,
  startProcess,
  toolPath,
  waitFor,
  type ConsulCluster,
  type ManagedProcess,
} from '../harness';
import { checkIds } from '../../shared/contract';
import { agentTokenOf, roleTokens } from './system-support';

const run = promisify(execFile);

jest.setTimeout(120_000);

const prefix = randomLoopbackPrefix();
const packer = path.resolve('packer');
const ip = `${prefix}.30`;
const node = 'backend-m1';
let cluster: ConsulCluster;
let md: MetadataServer;
let root: string;
let env: NodeJS.ProcessEnv;
let agent: ManagedProcess | undefined;

/** The agent as consul.service starts it, from the config the boot wrote. */
async function startAgent(): Promise<void> {
  agent = await startProcess({
    name: `consul ${node}`,
    command: toolPath('consul'),
    args: ['agent', `-config-dir=${root}/etc/consul.d`],
    env,
    stopTimeoutMs: 10_000,
    ready: async () => {
      const res = await fetch(`http://${ip}:8500/v1/status/leader`, { signal: AbortSignal.timeout(1_000) });
      return res.ok && ((await res.json()) as string) !== '';
    },
  });
  // consul.service's ExecStartPost: the agent's token from this instance's identity.
  await run('bash', [path.join(root, 'opt/ilb/bin/consul-identity.sh'), 'login'], { env });
}

/** The node maintenance check's notes, as the local agent has them (undefined: none). */
async function maintenance(): Promise<string | undefined> {
  const res = await fetch(`http://${ip}:8500/v1/agent/checks`, {
    headers: { 'X-Consul-Token': await agentTokenOf(root) },
  });
  const checks = (await res.json()) as Record<string, { Notes: string }>;
  return checks._node_maintenance?.Notes;
}

const script = (...args: string[]) =>
  run('bash', [path.join(root, 'opt/ilb/bin/ilb-drain.sh'), ...args], { env, timeout: 90_000 });

beforeAll(async () => {
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 0 });
  const tokens = await roleTokens(cluster, md, 'maint');
  const metadataHost = await md.addInstance({
    id: '5550001',
    name: node,
    zone: 'europe-west4-a',
    ip,
    projectId: 'maint',
    projectNumber: '7',
    attributes: {
      'consul-servers': cluster.joinAddrs.join(' '),
      'consul-gossip-key': cluster.gossipKey,
      'consul-default-token': tokens['backend-default'],
      'ilb-drain-seconds': '0',
    },
  });
  root = await mkdtemp(path.join(os.tmpdir(), 'ilb-maint-'));
  env = {
    ...process.env,
    PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
    ILB_ROOT: root,
    GCE_METADATA_HOST: metadataHost,
    CONSUL_CLIENT_ADDR: ip,
  };
  await run('bash', [path.join(packer, 'consul/files/install-role.sh'), 'backend', packer], { env });
  await run('bash', [path.join(root, 'opt/ilb/bin/startup.sh')], { env });
  await startAgent();
});

afterAll(async () => {
  await agent?.stop();
  await md?.stop();
  await cluster?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('node maintenance across a reboot', () => {
  it('the boot lifts the maintenance of the last shutdown', async () => {
    // The shutdown path: maintenance with its reason, then `consul leave` (the agent exits).
    await script();
    await agent!.exited;
    await startAgent();
    // The agent restored it from its data dir: without the boot step the node stays out.
    expect(await maintenance()).toBe(`ilb-drain: instance ${node} shutting down`);
    await script('--boot');
    expect(await maintenance()).toBeUndefined();
    await waitFor('no maintenance check in the catalog', async () => {
      const checks = await cluster.servers[0]!.consul.health.node(node);
      return !checks.some((c) => c.CheckID === checkIds.nodeMaintenance);
    });
  });

  it("keeps an operator's maintenance", async () => {
    await run(toolPath('consul'), ['maint', '-enable', '-reason', 'operator: disk check'], {
      env: { ...env, CONSUL_HTTP_ADDR: `${ip}:8500`, CONSUL_HTTP_TOKEN: await agentTokenOf(root) },
    });
    await agent!.kill();
    await startAgent();
    expect(await maintenance()).toBe('operator: disk check');
    await script('--boot');
    expect(await maintenance()).toBe('operator: disk check');
  });
});
