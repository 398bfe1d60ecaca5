import {
  startConsulCluster,
  startConsulDev,
  startDnsmasq,
  type ConsulCluster,
  type ConsulDev,
  type Dnsmasq,
} from '../harness';

const identity = {
  'gce-instance-id': '4410925612880337112',
  'gce-zone': 'us-central1-f',
  'gce-project': 'demo-project',
  'gce-instance-group': 'backend-us-central1-f',
  role: 'backend',
};

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
    const res = await fetch(`${consul.httpAddr}/v1/catalog/register`, {
      method: 'PUT',
      body: JSON.stringify({ Node: 'intruder', Address: '127.0.0.9' }),
    });
    expect(res.status).toBe(403);
  });

  it('registers a node with the identity metadata and reads it back over HTTP and DNS', async () => {
    const register = await consul.agent.request('PUT', '/v1/catalog/register', {
      Node: 'backend-x7k2',
      Address: '127.0.0.42',
      NodeMeta: identity,
      Service: { Service: 'backend', Port: 8080, Tags: ['us-central1-f'] },
    });
    expect(register.status).toBe(200);

    const node = (await (await consul.agent.request('GET', '/v1/catalog/node/backend-x7k2')).json()) as {
      Node: { Address: string; Meta: Record<string, string> };
      Services: Record<string, { Tags: string[] }>;
    };
    expect(node.Node.Meta).toMatchObject(identity);
    expect(node.Services.backend?.Tags).toEqual(['us-central1-f']);

    const resolver = dnsmasq.resolver();
    expect(await resolver.resolve4('backend-x7k2.node.consul')).toEqual(['127.0.0.42']);
    expect(await resolver.resolve4('us-central1-f.backend.service.consul')).toEqual(['127.0.0.42']);
    const srv = await resolver.resolveSrv('backend.service.consul');
    expect(srv.map((r) => r.port)).toEqual([8080]);
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
    const res = await cluster.servers[1]!.request('GET', '/v1/catalog/node/backend-a1');
    const node = (await res.json()) as { Node: { Address: string; Meta: Record<string, string> } };
    expect(node.Node.Address).toBe(client.ip);
    expect(node.Node.Meta).toMatchObject(identity);
    const members = (await (await client.request('GET', '/v1/agent/members')).json()) as { Name: string }[];
    expect(members.map((m) => m.Name).sort()).toEqual(
      ['backend-a1', 'consul-server-1', 'consul-server-2', 'consul-server-3'].sort(),
    );
  });

  it('keeps accepting writes through a client when the leader dies', async () => {
    const client = cluster.clients[0] ?? (await cluster.startClient({ nodeName: 'writer' }));
    const leader = await cluster.leader();
    const put = async (i: number) =>
      (await client.request('PUT', `/v1/kv/foundation/write-${i}`, `value-${i}`).catch(() => undefined))
        ?.ok === true;

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
    const keys = (await (await survivor.request('GET', '/v1/kv/foundation/?keys')).json()) as string[];
    expect(keys).toHaveLength(60);
  });
});
