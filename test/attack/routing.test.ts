/**
 * Attack suite, routing (issue 18, part 2): from the seat of one backend VM and of one HAProxy VM,
 * with exactly the Consul token each holds (read from its own metadata server, as a local process
 * on that VM would), try to pull the HAProxy tier's traffic to a listener the attacker runs, and to
 * block its reloads. Real Consul (ACLs from acl-setup.sh), real instances from packer/ (agents,
 * consul-template, haproxy-sync, HAProxy), load through HAProxy.
 */
import { readFile } from 'node:fs/promises';

import { startLoad } from '../../infra-scripts/local/load';
import type { LocalInstance } from '../../infra-scripts/local/instance';
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { readRuntime } from '../../services/haproxy-sync/runtime';
import { nodeMetaKeys, services } from '../../shared/contract';
import { randomLoopbackPrefix, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { agentTokenOf } from '../integration/system-support';
import { attackerListeners, randomInstanceId, seatBooter, type Boot, type Seat } from './seat';

jest.setTimeout(300_000);

const prefix = randomLoopbackPrefix();
const zone = 'us-central1-a';
const otherZone = 'us-central1-b';
let cluster: ConsulCluster;
let md: MetadataServer;
const instances: LocalInstance[] = [];
const logs: string[] = [];
let haproxy: LocalInstance;
let backendSeat: Seat;

let boot: Boot;

const attackers = attackerListeners();
const stolen = attackers.stolen;
const listen = (ip: string, port: number) => attackers.listen(ip, port, { instance: { name: 'mallory' } });

/** A catalog registration with the given token, as the VM's local process would send it. */
async function register(token: string, body: object): Promise<number> {
  const res = await fetch(`${cluster.servers[0]!.httpAddr}/v1/catalog/register`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': token },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

/** A node that looks like a member in every way the catalog can say: serfHealth, identity, zones. */
const forged = (node: string, address: string, port: number, service = services.backend.name) => ({
  Node: node,
  Address: address,
  NodeMeta: { [nodeMetaKeys.instanceId]: randomInstanceId(), [nodeMetaKeys.role]: 'backend' },
  Service: {
    ID: `${service}-${node}`,
    Service: service,
    Port: port,
    Address: address,
    Tags: [zone, otherZone],
  },
  Checks: [{ CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing' }],
});

const runtime = () => readRuntime(`${haproxy.root}/run/haproxy/admin.sock`, 'backends');
const rendered = () => readFile(`${haproxy.root}/etc/haproxy/haproxy.cfg`, 'utf8');

beforeAll(async () => {
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 0 });
  boot = seatBooter({ cluster, md, prefix, zone, instances, logs });
  const [a] = await Promise.all([boot('backend', 'backend-a1', 21), boot('backend', 'backend-a2', 22)]);
  backendSeat = a;
  haproxy = (await boot('haproxy', 'haproxy-h1', 30, { 'ilb-backend-cidrs': `${prefix}.0/24` })).instance;
  await waitFor(
    'both backends live in HAProxy',
    async () => (await runtime()).filter((s) => !s.maint).length === 2,
    { timeoutMs: 90_000 },
  );
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.kill().catch(() => undefined)));
  await attackers.close();
  await md?.stop();
  await cluster?.stop();
});

describe('a backend VM (the token it holds) against HAProxy routing', () => {
  it('gets 0 connections at every listener it registers, under traffic; reloads still happen', async () => {
    // The VM's own login token writes only its node and the backend service: other nodes are refused.
    const own = await agentTokenOf(backendSeat.instance.root);
    const rogue = { node: 'backend-x1', ip: `${prefix}.201`, port: 8080 };
    const spare = { node: 'backend-a1', ip: backendSeat.ip, port: 9999 };
    await listen(rogue.ip, rogue.port);
    await listen(spare.ip, spare.port);
    expect(await register(own, forged(rogue.node, rogue.ip, rogue.port))).toBe(403);
    // What it may still do: a second backend service on its own node, at a spare port it listens on.
    expect(
      await register(own, {
        ...forged(spare.node, spare.ip, spare.port),
        Service: { ...forged(spare.node, spare.ip, spare.port).Service, ID: 'backend-spare' },
      }),
    ).toBe(200);
    // No VM or function token may write another node's service any more; the routing checks are the
    // second line against whatever still can (a compromised server, an operator's token): a member in the
    // subnet, a service address other than its node's, a port-0 entry, an absurd address.
    const token = cluster.token;
    expect(await register(token, forged(rogue.node, rogue.ip, rogue.port))).toBe(200);
    expect(
      await register(token, {
        ...forged('backend-x3', `${prefix}.203`, 8080),
        Service: { ...forged('backend-x3', rogue.ip, 8080).Service, Address: rogue.ip },
      }),
    ).toBe(200);
    // A reload needs more slots; a port-0 entry must not block it.
    expect(await register(token, forged('backend-x4', `${prefix}.204`, 0))).toBe(200);
    // Consul itself refuses some absurd addresses (0.0.0.0: 500); this one it takes.
    expect(await register(token, forged('backend-x5', '255.255.255.255', 8080))).toBe(200);
    for (let i = 0; i < 8; i++) {
      expect(await register(token, forged(`backend-y${i}`, `${prefix}.${210 + i}`, 8080))).toBe(200);
    }
    await waitFor('the render to list the forged registrations', async () =>
      (await rendered()).includes('backend-y7'),
    );
    // A reload was needed (16 zone slots): it happened despite the port-0 entry.
    await waitFor(
      'HAProxy to run 16 zone slots',
      async () => (await runtime()).filter((s) => s.pool === 'z').length === 16,
      { timeoutMs: 30_000 },
    );

    const load = startLoad({ host: haproxy.ip, port: 8080, concurrency: 4, ratePerSec: 40 });
    await new Promise((r) => setTimeout(r, 10_000));
    const result = await load.stop();
    console.log(
      `routing attack: ${JSON.stringify({ ok: result.ok, failed: result.failed, stolen: [...stolen] })}`,
    );
    expect(result.ok).toBeGreaterThan(100);
    expect(result.failed).toBe(0);
    expect([...stolen.values()]).toEqual([0, 0]);
    expect(Object.keys(result.servedBy).some((k) => k.includes('mallory'))).toBe(false);
    const live = (await runtime()).filter((s) => !s.maint).map((s) => `${s.addr}:${s.port}`);
    expect(live.sort()).toEqual([`${prefix}.21:8080`, `${prefix}.22:8080`]);
    // haproxy-sync says what it left out, by reason.
    const reasons = logs.join('').match(/"routing_skipped":\{[^}]*\}/g) ?? [];
    expect(reasons.join()).toMatch(/not-a-member/);
    expect(reasons.join()).toMatch(/wrong-port/);
  });

  it("draws one server's share, and forces no reload, however many instances it registers on its node", async () => {
    // The VM's own token writes the backend service on its own node: through its local agent (which
    // anti-entropy keeps), 50 more instances at its own address and the tier's port, each of which
    // passes every per-registration check.
    const own = await agentTokenOf(backendSeat.instance.root);
    const zoneSlots = async () => (await runtime()).filter((s) => s.pool === 'z').length;
    const slotsBefore = await zoneSlots();
    const extra = 50;
    for (let i = 0; i < extra; i++) {
      const res = await fetch(`http://${backendSeat.ip}:8500/v1/agent/service/register`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': own },
        body: JSON.stringify({
          ID: `backend-dup-${String(i).padStart(2, '0')}`,
          Name: services.backend.name,
          Address: backendSeat.ip,
          Port: 8080,
          Tags: [zone],
        }),
      });
      await res.text();
      expect(res.status).toBe(200);
    }
    await waitFor(
      'the render to list every registration of backend-a1',
      async () => ((await rendered()).match(/backend-a1\b/g) ?? []).length > extra,
    );
    // Traffic starts once HAProxy runs the render's slots (a reload when it asks for more).
    const renderedZoneSlots = async () => ((await rendered()).match(/^\s*server z\d+ /gm) ?? []).length;
    await waitFor(
      'HAProxy to run every slot of the render',
      async () => (await zoneSlots()) >= (await renderedZoneSlots()),
      { timeoutMs: 60_000 },
    );
    const load = startLoad({ host: haproxy.ip, port: 8080, concurrency: 4, ratePerSec: 40 });
    await new Promise((r) => setTimeout(r, 10_000));
    const result = await load.stop();
    const attacker = result.servedBy['backend-a1'] ?? 0;
    const honest = result.servedBy['backend-a2'] ?? 0;
    const slotsAfter = await zoneSlots();
    console.log(`weight attack: ${JSON.stringify({ servedBy: result.servedBy, slotsBefore, slotsAfter })}`);
    expect(result.failed).toBe(0);
    expect(honest).toBeGreaterThan(40);
    // Round robin over one server per node: equal shares, give or take the load's last requests.
    expect(attacker).toBeLessThan(honest * 1.5);
    // The duplicates took no slot: no reload was forced.
    expect(slotsAfter).toBe(slotsBefore);
    expect(await rendered()).toMatch(/# skipped: duplicate-node node="backend-a1"/);
    const reasons = logs.join('').match(/"routing_skipped":\{[^}]*\}/g) ?? [];
    expect(reasons.join()).toMatch(/duplicate-node/);
  });
});
