/**
 * Issue 18, part 1, from the seat of one VM of each role: every token the VM really holds (those in
 * its agent's config, whatever its metadata carries) is tried against the Consul servers. A VM may
 * write its own node and its role's service; it may not register, move, deregister or check another
 * node, nor register a service of another role. Login accepts only identity tokens of this project,
 * for this audience, signed by the trusted key.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { launchInstance, type LocalInstance, type Role } from '../../infra-scripts/local/instance';
import { createIdentitySigner } from '../../infra-scripts/local/metadata-identity';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { setupRoleTokens } from '../../infra-scripts/local/scenarios/acl';
import { randomLoopbackPrefix, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { agentTokenOf } from '../integration/system-support';

jest.setTimeout(240_000);

const prefix = randomLoopbackPrefix();
const project = 'attack-project';
const zone = 'europe-west4-a';
const audience = `https://consul.ilb.internal/${project}`;
let cluster: ConsulCluster;
let md: MetadataServer;
const vms = new Map<string, LocalInstance>();
/** Each VM's metadata listener (GCE_METADATA_HOST). */
const hosts = new Map<string, string>();
const otherService: Record<Exclude<Role, 'consul'>, string> = {
  backend: 'haproxy-internal',
  haproxy: 'backend',
  frontend: 'backend',
};
const seats = [
  { role: 'backend', name: 'backend-a1', host: 20 },
  { role: 'haproxy', name: 'haproxy-a1', host: 21 },
  { role: 'frontend', name: 'frontend-a1', host: 22 },
] as const;
// The victim: another VM of the attacker's own role (what a role-wide token could write).
const victim = { role: 'backend', name: 'backend-v1', host: 23 } as const;

async function boot(role: Role, name: string, host: number, defaults: Record<string, string>) {
  const ip = `${prefix}.${host}`;
  const metadataHost = await md.addInstance({
    id: String(7_000_000 + host),
    name,
    zone,
    ip,
    projectId: project,
    projectNumber: '4711',
    attributes: {
      'consul-servers': cluster.joinAddrs.join(' '),
      'consul-gossip-key': cluster.gossipKey,
      'consul-default-token': defaults[`${role}-default`]!,
      'ilb-drain-seconds': '0',
    },
  });
  hosts.set(name, metadataHost);
  vms.set(name, await launchInstance({ role, ip, metadataHost }));
}

/** Every Consul token on the VM: its agent config's tokens (agent, default, recovery, registration). */
async function tokensOf(name: string): Promise<string[]> {
  const vm = vms.get(name)!;
  const conf = JSON.parse(await readFile(path.join(vm.root, 'etc/consul.d/10-agent.json'), 'utf8')) as {
    acl: { tokens: Record<string, string> };
  };
  return [...new Set(Object.values(conf.acl.tokens))];
}

const server = () => cluster.servers[0]!.httpAddr;

async function put(pathname: string, token: string, body: unknown): Promise<number> {
  const res = await fetch(`${server()}${pathname}`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': token },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

async function login(bearer: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${server()}/v1/acl/login`, {
    method: 'POST',
    body: JSON.stringify({ AuthMethod: 'gce-instance-identity', BearerToken: bearer }),
  });
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 0 });
  const defaults = await setupRoleTokens(cluster, { metadata: md, project });
  for (const vm of [...seats, victim]) await boot(vm.role, vm.name, vm.host, defaults);
  await waitFor('every VM a passing node with its service', async () => {
    const passing = await cluster.servers[0]!.consul.health.state('passing').catch(() => []);
    return [...seats, victim].every((vm) => passing.some((c) => c.Node === vm.name && !!c.ServiceID));
  });
});

afterAll(async () => {
  await Promise.all([...vms.values()].map((vm) => vm.kill().catch(() => undefined)));
  await md?.stop();
  await cluster?.stop();
});

describe.each(seats)('from the seat of $name', (seat) => {
  const rogueAddress = `${prefix}.${seat.host}`;

  it('holds no role-wide token: every token it has is refused on another node', async () => {
    const tokens = await tokensOf(seat.name);
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) {
      // A rogue node of the victim's role at an address the attacker listens on.
      const rogue = {
        Node: 'backend-x1',
        Address: rogueAddress,
        Service: { Service: 'backend', Port: 8080 },
      };
      expect(await put('/v1/catalog/register', token, rogue)).toBe(403);
      // Another real node, moved to the attacker's address.
      expect(await put('/v1/catalog/register', token, { Node: victim.name, Address: rogueAddress })).toBe(
        403,
      );
      expect(await put('/v1/catalog/deregister', token, { Node: victim.name })).toBe(403);
      // A critical check, or node maintenance, on the other node (healthSweep would act on either).
      const check = { Node: victim.name, CheckID: 'evil', Name: 'evil', Status: 'critical' };
      const maintenance = { ...check, CheckID: '_node_maintenance', Name: 'Node Maintenance Mode' };
      for (const Check of [check, maintenance]) {
        const body = { Node: victim.name, Address: `${prefix}.${victim.host}`, Check };
        expect(await put('/v1/catalog/register', token, body)).toBe(403);
      }
      // Its own node, with a service of another role.
      expect(
        await put('/v1/catalog/register', token, {
          Node: seat.name,
          Address: rogueAddress,
          Service: { Service: otherService[seat.role], Port: 8080 },
        }),
      ).toBe(403);
    }
  });

  it("its agent token is the login's: it may write its own node (node maintenance at its own agent)", async () => {
    const vm = vms.get(seat.name)!;
    const res = await fetch(`http://${vm.ip}:8500/v1/agent/maintenance?enable=false`, {
      method: 'PUT',
      headers: { 'X-Consul-Token': await agentTokenOf(vm.root) },
    });
    expect(res.status).toBe(200);
    const victimNode = await cluster.servers[0]!.consul.catalog.node(victim.name);
    expect(victimNode?.address).toBe(`${prefix}.${victim.host}`);
  });
});

describe('login with an identity token', () => {
  const subject = {
    id: '7000020',
    name: 'backend-a1',
    zone,
    projectId: project,
    projectNumber: '4711',
    createdAt: Math.floor(Date.now() / 1000),
  };
  const query = (aud: string) => new URLSearchParams({ audience: aud, format: 'full' });

  it('is accepted for this project and audience (the control)', async () => {
    expect((await login(md.signer.token(subject, query(audience)))).status).toBe(200);
  });

  it('is refused for another project, another audience, a standard-format token or an untrusted key', async () => {
    const refused = [
      md.signer.token({ ...subject, projectId: 'other-project' }, query(audience)),
      md.signer.token(subject, query('https://consul.ilb.internal/other-project')),
      md.signer.token(subject, new URLSearchParams({ audience })),
      createIdentitySigner().token(subject, query(audience)),
      // A name outside every role's prefix.
      md.signer.token({ ...subject, name: 'consul-server-9' }, query(audience)),
    ];
    for (const bearer of refused) {
      const answer = await login(bearer);
      expect(answer.status).not.toBe(200);
      expect(answer.body).not.toContain('SecretID');
    }
  });

  it("a VM's metadata listener hands out that VM's identity only", async () => {
    const res = await fetch(
      `http://${hosts.get('backend-a1')!}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(audience)}&format=full`,
      { headers: { 'Metadata-Flavor': 'Google' } },
    );
    const [, payload] = (await res.text()).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as {
      google: { compute_engine: { instance_name: string; project_id: string } };
    };
    expect(claims.google.compute_engine).toMatchObject({ instance_name: 'backend-a1', project_id: project });
  });
});
