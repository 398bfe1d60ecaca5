import { createConsulClient, PermanentError } from '../../shared/consul';
import { nodeMetaKeys, services } from '../../shared/contract';
import {
  startConsulCluster,
  startConsulDev,
  startDnsmasq,
  type ConsulCluster,
  type ConsulDev,
  type Dnsmasq,
} from '../harness';

const identity = {
  [nodeMetaKeys.instanceId]: '4410925612880337112',
  [nodeMetaKeys.zone]: 'us-central1-f',
  [nodeMetaKeys.project]: 'demo-project',
  [nodeMetaKeys.group]: 'backend-us-central1-f',
  [nodeMetaKeys.role]: 'backend',
};
const backend = services.backend;

describe('Consul dev agent with ACLs, read over HTTP and over DNS through dnsmasq', () => {
  let consul: ConsulDev;
  let dnsmasq: Dnsmasq;

  beforeAll(async () => {
    consul = await startConsulDev();
    dnsmasq = await startDnsmasq({ consulDns: consul.dns });
  });
  afterAll(async () => {
    await dnsmasq?.stop();
    await consul?.stop();
  });

  it('denies requests without a token (default deny)', async () => {
    const anonymous = createConsulClient({ baseUrl: consul.httpAddr, timeoutMs: 5_000, retries: 0 });
    const refused = anonymous.catalog.register({ node: 'intruder', address: '127.0.0.9' });
    await expect(refused).rejects.toBeInstanceOf(PermanentError);
    await expect(refused).rejects.toMatchObject({ status: 403 });
    anonymous.close();
  });

  it('registers a node with the identity metadata and reads it back over HTTP and DNS', async () => {
    await consul.agent.consul.catalog.register({
      node: 'backend-x7k2',
      address: '127.0.0.42',
      nodeMeta: identity,
      service: { service: backend.name, port: backend.port, tags: ['us-central1-f'] },
    });

    const node = await consul.agent.consul.catalog.node('backend-x7k2');
    expect(node?.meta).toMatchObject(identity);
    expect(node?.services.find((s) => s.service === backend.name)?.tags).toEqual(['us-central1-f']);

    const resolver = dnsmasq.resolver();
    expect(await resolver.resolve4('backend-x7k2.node.consul')).toEqual(['127.0.0.42']);
    expect(await resolver.resolve4('us-central1-f.backend.service.consul')).toEqual(['127.0.0.42']);
    const srv = await resolver.resolveSrv('backend.service.consul');
    expect(srv.map((r) => r.port)).toEqual([backend.port]);
    await expect(resolver.resolve4('nobody.node.consul')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});

describe('3-server Consul cluster with client agents', () => {
  let cluster: ConsulCluster;

  beforeAll(async () => {
    cluster = await startConsulCluster({ servers: 3 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('joins a client agent that registers its node metadata', async () => {
    const client = await cluster.startClient({ nodeName: 'backend-a1', nodeMeta: identity });
    const node = await cluster.servers[1]!.consul.catalog.node('backend-a1');
    expect(node?.address).toBe(client.ip);
    expect(node?.meta).toMatchObject(identity);
    const members = await client.consul.agent.members();
    expect(members.map((m) => m.name).sort()).toEqual(
      ['backend-a1', 'consul-server-1', 'consul-server-2', 'consul-server-3'].sort(),
    );
  });

  it('keeps accepting writes through a client when the leader dies', async () => {
    const client = cluster.clients[0] ?? (await cluster.startClient({ nodeName: 'writer' }));
    const leader = await cluster.leader();
    const put = async (i: number) =>
      client.consul.kv.set(`foundation/write-${i}`, `value-${i}`).then(
        () => true,
        () => false,
      );

    for (let i = 0; i < 20; i++) expect(await put(i)).toBe(true);
    await leader.kill();

    // Writes during the election may fail; each is retried until it lands, within a bounded time.
    const acknowledged: number[] = [];
    for (let i = 20; i < 60; i++) {
      const deadline = Date.now() + 20_000;
      while (!(await put(i))) {
        if (Date.now() > deadline) throw new Error(`write ${i} never succeeded after the leader died`);
        await new Promise((r) => setTimeout(r, 100));
      }
      acknowledged.push(i);
    }
    const newLeader = await cluster.leader();
    expect(newLeader.ip).not.toBe(leader.ip);

    // Every acknowledged write, before and after the failover, is readable from a surviving server.
    const survivor = cluster.servers.find((s) => s.process.running)!;
    const keys = await survivor.consul.kv.keys('foundation/');
    expect(keys).toHaveLength(60);
    expect(await survivor.consul.kv.get('foundation/write-59')).toMatchObject({ value: 'value-59' });
  });
});
