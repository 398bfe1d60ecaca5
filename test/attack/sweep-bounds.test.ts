/**
 * Attack suite, healthSweep (issue 18, "a hostile registration never blocks sweeps"): from the seat
 * of one backend VM, with the Consul token it really holds (its own identity login: its node and
 * the backend service), register on its own node services whose checks carry 1 MiB of output each
 * (the servers take it: an agent's check_output_max_size binds only checks its agent runs) until
 * the checks' answer is over the Consul layer's 8 MiB cap. Then a real, acting sweep: it still
 * acts (a stale node elsewhere is deregistered), reports the VM's node oversized and leaves it be.
 * Real Consul with ACLs, the VM a real agent, Compute the emulator.
 */
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { launchInstance, type LocalInstance } from '../../infra-scripts/local/instance';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { nodeMetaKeys } from '../../shared/contract';
import { randomLoopbackPrefix, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { project, startTestEmulator, zones } from '../integration/compute-emulator-helpers';
import { groupWithPassingNodes } from '../integration/health-sweep.entry';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import type { ProcessDriver } from '../../infra-scripts/local/compute-emulator/process-driver';
import {
  buildSweep,
  registerMember,
  sweepConfig,
  sweepToken,
  type LogLine,
} from '../integration/health-sweep.support';
import { agentTokenOf, bootAttributes, roleTokens } from '../integration/system-support';

jest.setTimeout(240_000);

const [zone] = zones as [string];
const prefix = randomLoopbackPrefix();
const attacker = { name: 'backend-att1', id: '7000031', ip: `${prefix}.31` };
// A second real VM whose instance Compute does not know: a gossip member the sweep must still find.
const ghost = { name: 'backend-ghost1', id: '7000032', ip: `${prefix}.32` };
const layerCap = 8 * 1024 * 1024;
let cluster: ConsulCluster;
let md: MetadataServer;
let vm: LocalInstance;
let ghostVm: LocalInstance | undefined;
let admin: ConsulClient;
let token: string;
let tokens: Awaited<ReturnType<typeof roleTokens>>;
let emu: RunningEmulator;
let driver: ProcessDriver;
const logs: LogLine[] = [];

/** A real backend VM of the watched group (its created-by names `backend-mig`), booted from its metadata. */
async function launchBackend(who: { name: string; id: string; ip: string }): Promise<LocalInstance> {
  const metadataHost = await md.addInstance({
    id: who.id,
    name: who.name,
    zone,
    ip: who.ip,
    projectId: project,
    projectNumber: '4711',
    attributes: {
      ...bootAttributes(cluster, tokens, 'backend', { zone, projectNumber: '4711' }),
      'ilb-drain-seconds': '0',
    },
  });
  return launchInstance({ role: 'backend', ip: who.ip, metadataHost });
}

beforeAll(async () => {
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 1, prefix });
  admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: cluster.servers[0]!.httpAddr, CONSUL_HTTP_TOKEN: cluster.token }).consul,
  );
  md = createMetadataServer({ port: 0 });
  tokens = await roleTokens(cluster, md, project);
  token = await sweepToken(cluster.servers[0]!);
  ({ emu, driver } = await startTestEmulator());
  // The attacker's group (bootAttributes' created-by names `backend-mig`), watched by the sweep;
  // its one member a passing node.
  await groupWithPassingNodes({ emu, admin }, { zone, name: 'backend-mig', size: 1 });
  vm = await launchBackend(attacker);
  await waitFor('the VM a node with its identity and a passing service', async () => {
    const node = await admin.catalog.node(attacker.name).catch(() => null);
    const checks = await admin.health.node(attacker.name).catch(() => []);
    return (
      node?.meta[nodeMetaKeys.instanceId] === attacker.id &&
      checks.some((ch) => ch.ServiceID && ch.Status === 'passing')
    );
  });
}, 180_000);

afterAll(async () => {
  await vm?.kill().catch(() => undefined);
  await ghostVm?.kill().catch(() => undefined);
  admin?.close();
  await emu?.stop();
  await md?.stop();
  await cluster?.stop();
  expect(driver?.pids().length ?? 0).toBe(0);
});

/** PUT as the VM: its own login token, against the server (what its agent token may write). */
async function asVm(vmToken: string, path: string, body: object): Promise<number> {
  const res = await fetch(`${cluster.servers[0]!.httpAddr}${path}`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': vmToken },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) process.stdout.write(`asVm ${path}: ${res.status} ${text.slice(0, 300)}\n`);
  return res.status;
}

/** A real, acting sweep of the attacker's group; its report in one line. */
async function actingSweep(answer: string, thresholds: Record<string, unknown> = {}) {
  const sweep = buildSweep({
    consulAddr: cluster.servers[0]!.httpAddr,
    token,
    computeUrl: emu.url,
    config: sweepConfig(project, [{ zone, name: 'backend-mig', role: 'backend' }], thresholds),
    logs,
  });
  try {
    const r = await sweep.run({ dryRun: false });
    process.stdout.write(
      `sweep-bounds: ${answer}; reportOnly ${JSON.stringify(r.report?.reportOnly)}; ` +
        `incomplete ${JSON.stringify(r.report?.incompleteReads)}; listing ${JSON.stringify(r.report?.listing)}; ` +
        `consul calls ${r.apiCalls.consul}; done ${JSON.stringify(r.done.map((d) => [d.action.type, d.outcome]))}; ` +
        `identity ${JSON.stringify(r.report?.identity)}\n`,
    );
    return r;
  } finally {
    await sweep.close();
  }
}

async function answerBytes(path: string): Promise<number> {
  const res = await fetch(`${cluster.servers[0]!.httpAddr}${path}`, {
    headers: { 'X-Consul-Token': cluster.token },
  });
  return (await res.arrayBuffer()).byteLength;
}

test("one VM's oversized checks on its own node do not make the sweep report-only", async () => {
  const own = await agentTokenOf(vm.root);
  // A stale node elsewhere: its identity names the watched group, Compute has no such instance.
  await registerMember(
    admin,
    { name: 'backend-gone1', id: '9000000000000000001', zone, group: 'backend-mig', role: 'backend' },
    project,
  );
  // The control: the VM's token may not touch another node.
  const foreign = { Node: 'backend-gone1', Address: '10.201.0.1', SkipNodeUpdate: true };
  expect(
    await asVm(own, '/v1/catalog/register', {
      ...foreign,
      Check: { CheckID: 'service:x', Name: 'x', Status: 'critical' },
    }),
  ).toBe(403);

  // Its own node: 9 services of its role, each with a check of 1 MiB of output.
  const output = 'x'.repeat(1024 * 1024);
  for (let i = 0; i < 9; i++) {
    const id = `backend-bloat-${i}`;
    const status = await asVm(own, '/v1/catalog/register', {
      Node: attacker.name,
      Address: attacker.ip,
      SkipNodeUpdate: true,
      Service: { ID: id, Service: 'backend', Port: 8080, Address: attacker.ip },
      Check: { CheckID: `service:${id}`, Name: id, Status: 'passing', ServiceID: id, Output: output },
    });
    expect(status).toBe(200);
  }
  const bytes = await answerBytes('/v1/health/state/any');
  expect(bytes).toBeGreaterThan(layerCap);

  const r = await actingSweep(`checks answer ${bytes} bytes`);
  expect(r.status).toBe('completed');
  expect(r.report?.reportOnly).toEqual([]);
  expect(r.done).toContainEqual({
    action: expect.objectContaining({ type: 'deregister', node: 'backend-gone1', reason: 'not-found' }),
    outcome: 'done',
  });
  expect(r.report?.identity).toContainEqual(
    expect.objectContaining({ node: attacker.name, reason: 'oversized' }),
  );
  // Nothing planned on the attacker's node or its instance, and its node is still there.
  expect(JSON.stringify(r.report?.actions)).not.toContain(attacker.name);
  expect(JSON.stringify(r.report?.actions)).not.toContain(attacker.id);
  expect((await admin.catalog.node(attacker.name))?.meta[nodeMetaKeys.instanceId]).toBe(attacker.id);
  expect(await admin.catalog.node('backend-gone1')).toBeNull();
});

test("one VM's oversized node entry (metadata, tagged addresses) does not make the sweep report-only", async () => {
  ghostVm = await launchBackend(ghost);
  await waitFor('the ghost VM a gossip member with its node', async () => {
    const members = await admin.agent.members();
    const node = await admin.catalog.node(ghost.name).catch(() => null);
    return members.some((m) => m.name === ghost.name && m.status === 1) && node !== null;
  });

  // From the VM's own token, its own node: 9 tagged addresses of 1 MiB each (Consul 1.15.6 bounds
  // neither node metadata nor tagged addresses on /v1/catalog/register).
  const own = await agentTokenOf(vm.root);
  const big = 'x'.repeat(1024 * 1024);
  const tagged = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`t${i}`, big]));
  const current = await admin.catalog.node(attacker.name);
  expect(
    await asVm(own, '/v1/catalog/register', {
      Node: attacker.name,
      Address: attacker.ip,
      NodeMeta: current?.meta,
      TaggedAddresses: tagged,
    }),
  ).toBe(200);
  const bytes = await answerBytes('/v1/catalog/nodes');
  expect(bytes).toBeGreaterThan(layerCap);

  // The group's one member has a catalog entry, no agent: listed from the gossip members, it is
  // unlisted and counts dead (as a member without a node would), which would make its zone, the
  // only one, look dead; a zone threshold of 1 keeps that gate out of this test.
  const r = await actingSweep(`catalog/nodes answer ${bytes} bytes`, { zoneDeadThreshold: 1 });
  expect(r.status).toBe('completed');
  expect(r.report?.reportOnly).toEqual([]);
  expect(r.report?.listing).toEqual(expect.objectContaining({ source: 'members' }));
  // The member Compute does not know (404): deregistered, found through the gossip pool.
  expect(r.done).toContainEqual({
    action: expect.objectContaining({ type: 'deregister', node: ghost.name, reason: 'not-found' }),
    outcome: 'done',
  });
  expect(r.report?.identity).toContainEqual(
    expect.objectContaining({ node: attacker.name, reason: 'oversized' }),
  );
  expect(JSON.stringify(r.report?.actions)).not.toContain(attacker.name);
  expect(JSON.stringify(r.report?.actions)).not.toContain(attacker.id);
  // Its node is still there (over the client's cap now: read directly).
  const res = await fetch(`${cluster.servers[0]!.httpAddr}/v1/catalog/node/${attacker.name}`, {
    headers: { 'X-Consul-Token': cluster.token },
  });
  const entry = (await res.json()) as { Node: { Meta: Record<string, string> } };
  expect(entry.Node.Meta[nodeMetaKeys.instanceId]).toBe(attacker.id);
});
