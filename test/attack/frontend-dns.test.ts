/**
 * Attack suite, the frontend's DNS path (issue 18, part 2): from the seat of one HAProxy VM, with the
 * Consul token it holds (its own login token, read from its agent's config as a local process could),
 * register `haproxy-internal` instances on its own node whose service address is a listener the
 * attacker runs (outside the HAProxy subnet, and inside it but not a member), and copies of its own
 * address. Consul DNS answers with all of them; the frontend must use none of the rogue addresses
 * and count the attacker's own address once. Real Consul, real instances from packer/ (agents,
 * dnsmasq, consul-template, haproxy-sync, HAProxy, the frontend), traffic through the frontend.
 */
import { Resolver } from 'node:dns/promises';

import type { LocalInstance } from '../../infra-scripts/local/instance';
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { haproxyDnsName, services } from '../../shared/contract';
import { randomLoopbackPrefix, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { agentTokenOf } from '../integration/system-support';
import { attackerListeners, seatBooter, type Boot, type Seat } from './seat';

jest.setTimeout(300_000);

const prefix = randomLoopbackPrefix();
const zone = 'us-central1-a';
let cluster: ConsulCluster;
let md: MetadataServer;
const instances: LocalInstance[] = [];
const logs: string[] = [];
let attacker: Seat;
let frontend: LocalInstance;

let boot: Boot;

const attackers = attackerListeners();
const stolen = attackers.stolen;
const listen = (ip: string, port: number) =>
  attackers.listen(
    ip,
    port,
    {
      instance: { id: '1', name: 'mallory', zone, internalIp: ip },
      consul: { node: 'mallory', datacenter: 'dc1' },
    },
    { 'X-ILB-HAProxy': 'mallory' },
  );

interface Page {
  ok: boolean;
  haproxy?: { node?: string };
}
const page = async (): Promise<Page> => {
  const res = await fetch(`http://${frontend.ip}:80/?format=json`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as Page;
};

beforeAll(async () => {
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 0 });
  boot = seatBooter({ cluster, md, prefix, zone, instances, logs });
  const subnet = `${prefix}.0/24`;
  await boot('backend', 'backend-a1', 21);
  [attacker] = await Promise.all([
    boot('haproxy', 'haproxy-h1', 30, { 'ilb-backend-cidrs': subnet }),
    boot('haproxy', 'haproxy-h2', 31, { 'ilb-backend-cidrs': subnet }),
  ]);
  frontend = (await boot('frontend', 'frontend-f1', 40, { 'ilb-haproxy-cidrs': subnet })).instance;
  await waitFor(
    'the frontend to be served through both HAProxies',
    async () => {
      const seen = new Set<string | undefined>();
      for (let i = 0; i < 20; i++) seen.add((await page()).haproxy?.node);
      return seen.has('haproxy-h1') && seen.has('haproxy-h2');
    },
    { timeoutMs: 120_000 },
  );
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.kill().catch(() => undefined)));
  await attackers.close();
  await md?.stop();
  await cluster?.stop();
});

describe('an HAProxy VM (the token it holds) against the frontend', () => {
  it('gets 0 requests at rogue haproxy-internal addresses and no extra share from copies of its own', async () => {
    const own = await agentTokenOf(attacker.instance.root);
    const [a, b, c] = prefix.split('.') as [string, string, string];
    const outside = `${a}.${b}.${(Number(c) + 128) % 256}.201`;
    const inside = `${prefix}.202`;
    await listen(outside, services.haproxy.port);
    await listen(inside, services.haproxy.port);
    const register = async (id: string, address: string) => {
      const res = await fetch(`http://${attacker.ip}:8500/v1/agent/service/register`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': own },
        body: JSON.stringify({
          ID: id,
          Name: services.haproxy.name,
          Address: address,
          Port: services.haproxy.port,
          Tags: [zone],
        }),
      });
      await res.text();
      return res.status;
    };
    expect(await register('haproxy-rogue-out', outside)).toBe(200);
    expect(await register('haproxy-rogue-in', inside)).toBe(200);
    for (let i = 0; i < 4; i++) expect(await register(`haproxy-copy-${i}`, attacker.ip)).toBe(200);
    await waitFor('the catalog to hold every registration', async () => {
      const res = await fetch(`${cluster.servers[0]!.httpAddr}/v1/catalog/service/${services.haproxy.name}`, {
        headers: { 'X-Consul-Token': cluster.token },
      });
      return ((await res.json()) as unknown[]).length === 8;
    });

    // The premise: the frontend's resolver (dnsmasq → Consul DNS) hands out the rogue addresses.
    const resolver = new Resolver();
    resolver.setServers([`${frontend.ip}:53`]);
    const answered = new Set<string>();
    for (let i = 0; i < 20; i++) {
      for (const ip of await resolver.resolve4(`${zone}.${haproxyDnsName}`)) answered.add(ip);
    }
    console.log(`frontend dns answers: ${JSON.stringify([...answered])}`);
    expect(answered).toEqual(new Set([outside, inside, attacker.ip, `${prefix}.31`]));

    const servedBy: Record<string, number> = {};
    let failed = 0;
    for (let i = 0; i < 200; i++) {
      const answer = await page();
      if (!answer.ok) failed++;
      const node = answer.haproxy?.node ?? 'none';
      servedBy[node] = (servedBy[node] ?? 0) + 1;
    }
    console.log(`frontend dns attack: ${JSON.stringify({ servedBy, failed, stolen: [...stolen] })}`);
    expect([...stolen.values()]).toEqual([0, 0]);
    expect(servedBy.mallory).toBeUndefined();
    expect(failed).toBe(0);
    // Each HAProxy once in the frontend's choice: the attacker's copies add nothing to its share
    // (Consul DNS itself repeats no address; over UDP it answered only 3 records, so the copies
    // crowded the others out until the frontend's agent set the truncation flag).
    const h1 = servedBy['haproxy-h1'] ?? 0;
    const h2 = servedBy['haproxy-h2'] ?? 0;
    expect(h2).toBeGreaterThan(50);
    expect(h1).toBeLessThan(h2 * 1.6);
    const skipped = logs.join('').match(/"routing_skipped":\{[^}]*\}/g) ?? [];
    expect(skipped.join()).toMatch(/not-a-member/);
    expect(skipped.join()).toMatch(/outside-subnet/);
    // One line per change of what is skipped, not one per request.
    expect(skipped.length).toBeLessThan(10);
  });
});
