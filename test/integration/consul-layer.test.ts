import { createConsulClient, PermanentError, type ConsulClient } from '../../shared/consul';
import { checkIds, nodeMetaKeys, services } from '../../shared/contract';
import { startConsulDev, type ConsulDev } from '../harness';

/** The Consul layer's API against a real agent (ACLs on), as the sandbox and status page will use it. */
describe('Consul layer against a real Consul', () => {
  let dev: ConsulDev;
  let consul: ConsulClient;

  beforeAll(async () => {
    dev = await startConsulDev();
    consul = createConsulClient({ baseUrl: dev.httpAddr, token: dev.token, timeoutMs: 3_000, retries: 1 });
  });
  afterAll(async () => {
    consul?.close();
    await dev?.stop();
  });

  it('KV: set, get, compare-and-set, keys with folders, delete with CAS, delete a tree', async () => {
    await consul.kv.set('layer/a', 'one');
    const a = await consul.kv.get('layer/a');
    expect(a).toMatchObject({ key: 'layer/a', value: 'one' });
    expect(await consul.kv.cas('layer/a', 'two', a!.modifyIndex + 1000)).toBeNull();
    const index = await consul.kv.cas('layer/a', 'two', a!.modifyIndex);
    expect(index).toBeGreaterThan(a!.modifyIndex);
    expect(await consul.kv.cas('layer/a', 'x', 0)).toBeNull();
    expect(await consul.kv.cas('layer/dir/b', 'b', 0)).not.toBeNull();
    expect(await consul.kv.keys('layer/', { separator: '/' })).toEqual(['layer/a', 'layer/dir/']);
    expect(await consul.kv.keys('nothing-here/')).toEqual([]);
    expect(await consul.kv.delete('layer/a', { cas: a!.modifyIndex })).toBe(false);
    expect(await consul.kv.delete('layer/a', { cas: index! })).toBe(true);
    await consul.kv.deleteTree('layer/');
    expect(await consul.kv.get('layer/dir/b')).toBeNull();
  });

  it('catalog: nodes with metadata, filtered by it; health by node, service and state', async () => {
    await consul.catalog.register({
      node: 'backend-l1',
      address: '10.9.0.1',
      nodeMeta: { [nodeMetaKeys.role]: 'backend', [nodeMetaKeys.zone]: 'z1' },
      service: { service: services.backend.name, port: services.backend.port, tags: ['z1'] },
      check: { checkId: 'l1-alive', name: 'alive', status: 'passing', serviceId: services.backend.name },
    });
    await consul.catalog.register({
      node: 'frontend-l1',
      address: '10.9.0.2',
      nodeMeta: { [nodeMetaKeys.role]: 'frontend' },
    });
    const backends = await consul.catalog.nodes({ nodeMeta: { [nodeMetaKeys.role]: 'backend' } });
    expect(backends.map((n) => n.name)).toEqual(['backend-l1']);
    expect(backends[0]?.meta).toMatchObject({ [nodeMetaKeys.zone]: 'z1' });
    const node = await consul.catalog.node('backend-l1');
    expect(node?.services).toEqual([
      expect.objectContaining({ service: services.backend.name, port: services.backend.port, tags: ['z1'] }),
    ]);
    expect(await consul.catalog.node('nobody')).toBeNull();

    const passing = await consul.health.service(services.backend.name, { passing: true });
    expect(passing.map((e) => e.Node.Node)).toEqual(['backend-l1']);
    expect((await consul.health.node('backend-l1')).map((c) => c.CheckID)).toContain('l1-alive');
    // A critical node check takes the service out of the passing set.
    await consul.catalog.register({
      node: 'backend-l1',
      address: '10.9.0.1',
      skipNodeUpdate: true,
      check: { checkId: checkIds.drain, name: 'drain', status: 'critical', notes: 'test' },
    });
    expect(await consul.health.service(services.backend.name, { passing: true })).toEqual([]);
    expect((await consul.health.state('critical')).map((c) => c.CheckID)).toContain(checkIds.drain);
    await consul.catalog.deregister({ node: 'backend-l1', checkId: checkIds.drain });

    const stale = await consul.catalog.node('frontend-l1');
    expect(await consul.catalog.deleteNodeCas('frontend-l1', stale!.modifyIndex + 1000)).toBe('conflict');
    expect(await consul.catalog.deleteNodeCas('frontend-l1', stale!.modifyIndex)).toBe('deleted');
    expect(await consul.catalog.node('frontend-l1')).toBeNull();
  });

  it('transactions answer a rolled-back CAS with its errors instead of throwing', async () => {
    const value = Buffer.from('v').toString('base64');
    const ok = await consul.txn([{ KV: { Verb: 'set', Key: 'txn/a', Value: value } }]);
    expect(ok).toMatchObject({ ok: true, results: [{ KV: { Key: 'txn/a' } }] });
    const lost = await consul.txn([{ KV: { Verb: 'cas', Key: 'txn/a', Value: value, Index: 1 } }]);
    expect(lost).toMatchObject({ ok: false, errors: [{ What: expect.stringMatching(/index is stale/) }] });
  });

  it('sessions hold a lock that another session cannot take until released', async () => {
    const first = await consul.session.create({ name: 'layer-test', ttl: '15s' });
    const second = await consul.session.create({ ttl: '15s' });
    expect(await consul.kv.acquire('locks/layer', 'first', first)).toBe(true);
    expect(await consul.kv.acquire('locks/layer', 'second', second)).toBe(false);
    await consul.session.renew(first);
    expect(await consul.kv.release('locks/layer', 'first', first)).toBe(true);
    expect(await consul.kv.acquire('locks/layer', 'second', second)).toBe(true);
    await consul.session.destroy(first);
    await consul.session.destroy(second);
  });

  it('agent: self, members, node maintenance, status', async () => {
    const self = await consul.agent.self();
    expect(self.nodeName).toBe('consul-dev');
    expect(self.datacenter).toBe('dc1');
    expect((await consul.agent.members()).map((m) => m.name)).toEqual(['consul-dev']);
    await consul.agent.maintenance(true, 'layer test');
    expect((await consul.agent.checks())[checkIds.nodeMaintenance]).toMatchObject({ notes: 'layer test' });
    await consul.agent.maintenance(false);
    expect((await consul.agent.checks())[checkIds.nodeMaintenance]).toBeUndefined();
    expect(await consul.status.leader()).toMatch(/:\d+$/);
    expect(await consul.status.peers()).toHaveLength(1);
    expect(await consul.agent.forceLeave('never-a-member')).toBe('not-a-member');
  });

  it('operator: autopilot health of the servers, and refused without operator read', async () => {
    // Right after start the server may not count as healthy yet: Consul answers that with a 429,
    // which the layer returns as a report, so every poll answers.
    let health = await consul.operator.autopilotHealth();
    for (let i = 0; !health.healthy && i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      health = await consul.operator.autopilotHealth();
    }
    expect(health.healthy).toBe(true);
    expect(health.servers).toEqual([
      expect.objectContaining({ name: 'consul-dev', leader: true, voter: true, healthy: true }),
    ]);
    await expect(consul.at({ token: dev.tokens.dns }).operator.autopilotHealth()).rejects.toMatchObject({
      status: 403,
    });
  });

  it('blocking queries answer when the data changes past the index', async () => {
    await consul.kv.set('watch/k', 'v1');
    const first = await consul.blocking.kv('watch/k');
    expect(first.value?.value).toBe('v1');
    expect(first.index).toBeGreaterThan(0);
    const started = performance.now();
    const next = consul.blocking.kv('watch/k', { index: first.index, wait: '10s' });
    setTimeout(() => void consul.kv.set('watch/k', 'v2'), 300);
    expect((await next).value?.value).toBe('v2');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(performance.now() - started).toBeLessThan(5_000);

    const nodes = await consul.blocking.catalogNodes();
    const unchanged = await consul.blocking.catalogNodes({ index: nodes.index, wait: '200ms' });
    expect(unchanged.index).toBe(nodes.index);
    const health = await consul.blocking.healthState();
    expect(health.value.length).toBeGreaterThan(0);
    const backend = await consul.blocking.healthService(services.backend.name, { passing: true });
    expect(backend.index).toBeGreaterThan(0);
  });

  it('refuses a token that Consul does not know, permanently', async () => {
    const stranger = consul.at({ token: '00000000-0000-4000-8000-000000000000' });
    await expect(stranger.kv.get('anything')).rejects.toBeInstanceOf(PermanentError);
    await expect(stranger.kv.get('anything')).rejects.toMatchObject({ status: 403 });
  });
});
