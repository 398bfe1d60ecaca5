import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { acquireSweepLock } from '../../shared/health-sweep/lock';
import type { SweepResult } from '../../shared/health-sweep/sweep';
import { createLogger } from '../../shared/logging';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import type { ProcessDriver } from '../../infra-scripts/local/compute-emulator/process-driver';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';
import {
  buildSweep,
  forceLeaveToken,
  identity,
  keys,
  registerMember,
  sweepConfig,
  sweepToken,
  type LogLine,
  type Member,
} from './health-sweep.support';

const [zoneA] = zones as [string, string];
const region = 'us-central1';
type Op = { name?: string | null };

let cluster: ConsulCluster;
let server: ConsulAgent;
let admin: ConsulClient;
let token: string;
let operatorToken: string;
let emu: RunningEmulator;
let driver: ProcessDriver;
let c: ReturnType<typeof clients>;
const logs: LogLine[] = [];

const groups = [
  { zone: zoneA, name: 'backend-a', role: 'backend' },
  { region, name: 'haproxy', role: 'haproxy' },
];

async function members(): Promise<Member[]> {
  const [zonal] = await c.igms.listManagedInstances({
    project,
    zone: zoneA,
    instanceGroupManager: 'backend-a',
  });
  const [regional] = await c.regionIgms.listManagedInstances({
    project,
    region,
    instanceGroupManager: 'haproxy',
  });
  const of = (m: (typeof zonal)[number], group: string, role: string): Member => {
    const [, zone = '', name = ''] = /zones\/([^/]+)\/instances\/([^/]+)$/.exec(m.instance ?? '') ?? [];
    return { name, id: String(m.id), zone, group, role };
  };
  return [
    ...zonal.map((m) => of(m, 'backend-a', 'backend')),
    ...regional.map((m) => of(m, 'haproxy', 'haproxy')),
  ];
}

async function settled(): Promise<Member[]> {
  let found: Member[] = [];
  await eventually(async () => {
    const [zonal] = await c.igms.listManagedInstances({
      project,
      zone: zoneA,
      instanceGroupManager: 'backend-a',
    });
    const [regional] = await c.regionIgms.listManagedInstances({
      project,
      region,
      instanceGroupManager: 'haproxy',
    });
    const all = [...zonal, ...regional];
    const [g] = await c.igms.get({ project, zone: zoneA, instanceGroupManager: 'backend-a' });
    found = await members();
    return (
      all.length === 5 &&
      g.status?.isStable === true &&
      all.every((m) => m.instanceStatus === 'RUNNING' && m.currentAction === 'NONE')
    );
  }, 30_000);
  return found;
}

/** Consul as the groups' agents would leave it: exactly one passing node per member. */
async function resetWorld(): Promise<Member[]> {
  const live = await settled();
  const names = new Set(live.map((m) => m.name));
  for (const n of await admin.catalog.nodes()) {
    if (!n.name.startsWith('consul-') && !names.has(n.name)) await admin.catalog.deregister({ node: n.name });
  }
  for (const m of live) await registerMember(admin, m, project);
  await admin.kv.deleteTree(keys.root);
  await admin.kv.deleteTree(keys.draining);
  return live;
}

const stranger = (name: string, id: string): Member => ({
  name,
  id,
  zone: zoneA,
  group: 'backend-a',
  role: 'backend',
});
const nodeNames = async () => (await admin.catalog.nodes()).map((n) => n.name);
const doneOf = (r: SweepResult, type: string) =>
  r.done.filter((d) => d.action.type === type && d.outcome === 'done').map((d) => d.action);

beforeAll(async () => {
  cluster = await startConsulCluster({ servers: 1 });
  server = cluster.servers[0] as ConsulAgent;
  token = await sweepToken(server);
  operatorToken = await forceLeaveToken(server);
  admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: cluster.token }).consul,
  );
  ({ emu, driver } = await startTestEmulator());
  c = clients(emu.port);
  const [z] = await c.igms.insert({
    project,
    zone: zoneA,
    instanceGroupManagerResource: {
      name: 'backend-a',
      baseInstanceName: 'backend',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 3,
    },
  });
  await c.zoneOps.wait({ project, zone: zoneA, operation: (z.latestResponse as Op).name! });
  const [r] = await c.regionIgms.insert({
    project,
    region,
    instanceGroupManagerResource: {
      name: 'haproxy',
      baseInstanceName: 'haproxy',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 2,
    },
  });
  await c.regionOps.wait({ project, region, operation: (r.latestResponse as Op).name! });
}, 120_000);

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await cluster?.stop();
  expect(driver.pids().length).toBe(0);
});

beforeEach(async () => {
  logs.length = 0;
  await resetWorld();
}, 60_000);

const build = (
  opts: {
    config?: ReturnType<typeof sweepConfig>;
    lookupLimit?: number;
    wrap?: (c: ConsulClient) => ConsulClient;
    now?: () => number;
    /** As deployed: the force-leave token apart from the main one (false: none). */
    forceLeave?: boolean;
  } = {},
) =>
  buildSweep({
    consulAddr: server.httpAddr,
    token,
    ...(opts.forceLeave === false ? {} : { forceLeaveToken: operatorToken }),
    computeUrl: emu.url,
    config: opts.config ?? sweepConfig(project, groups),
    logs,
    ...(opts.lookupLimit !== undefined ? { lookupLimit: opts.lookupLimit } : {}),
    ...(opts.wrap ? { wrap: opts.wrap } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });

describe('healthSweep against a real Consul (its own ACL policy) and the Compute emulator', () => {
  test('a stale node is removed only on the Nth complete sweep; live members are never touched', async () => {
    const live = await resetWorld();
    await registerMember(admin, stranger('backend-gone', '9000000000000000001'), project);
    // No lookups: absence alone, counted in KV across sweeps.
    const sweep = build({ lookupLimit: 0 });
    for (const n of [1, 2]) {
      const r = await sweep.run({ dryRun: false });
      expect(r.status).toBe('completed');
      expect(r.report?.reportOnly).toEqual([]);
      expect(r.report?.absent).toEqual([expect.objectContaining({ node: 'backend-gone', absentCount: n })]);
      expect(await nodeNames()).toContain('backend-gone');
      const mark = await admin.kv.get(`${keys.marks}9000000000000000001`);
      expect(JSON.parse(mark?.value ?? '{}')).toEqual({ absentCount: n });
    }
    const third = await sweep.run({ dryRun: false });
    expect(third.report?.stale).toEqual([
      expect.objectContaining({ node: 'backend-gone', reason: 'absent' }),
    ]);
    expect(doneOf(third, 'deregister')).toEqual([expect.objectContaining({ node: 'backend-gone' })]);
    const names = await nodeNames();
    expect(names).not.toContain('backend-gone');
    for (const m of live) expect(names).toContain(m.name);
    // API calls: pages and anomalies, not nodes (2 groups × (1 page + get), catalog, checks, 2 key lists, bucket, 1 mark).
    expect(third.apiCalls.compute).toBe(4);
    // The metrics reached Monitoring.
    const listed = emu.monitoring.list({
      filter: 'metric.type = "custom.googleapis.com/ilb/actions" AND metric.labels.action = "deregister"',
      startTime: new Date(Date.now() - 60_000).toISOString(),
      endTime: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(logs.filter((l) => l.message === 'sweep metrics not written')).toEqual([]);
    expect(listed.timeSeries.map((t) => t.points.map((p) => p.value.doubleValue))).toEqual([[1, 0, 0]]);
    await sweep.close();
  }, 60_000);

  test('Compute answering 404 for an absent node removes it at once', async () => {
    await registerMember(admin, stranger('backend-vanished', '9000000000000000002'), project);
    const sweep = build();
    const r = await sweep.run({ dryRun: false });
    expect(r.report?.stale).toEqual([
      expect.objectContaining({ node: 'backend-vanished', reason: 'not-found' }),
    ]);
    expect(await nodeNames()).not.toContain('backend-vanished');
    await sweep.close();
  }, 60_000);

  test('a same-name replacement is kept: its own id is live, and a planned delete loses its CAS to it', async () => {
    const live = await resetWorld();
    const victim = live.find((m) => m.group === 'backend-a') as Member;
    // The node still carries the previous instance's id: absent twice.
    await registerMember(admin, { ...victim, id: '9000000000000000003' }, project);
    const counting = build({ lookupLimit: 0 });
    await counting.run({ dryRun: false });
    await counting.run({ dryRun: false });
    // The replacement's agent registers the name with its own, live id: nothing to do about it.
    await registerMember(admin, victim, project);
    const third = await counting.run({ dryRun: false });
    expect(third.report?.stale).toEqual([]);
    expect((await admin.catalog.node(victim.name))?.meta['gce-instance-id']).toBe(victim.id);
    expect(await admin.kv.get(`${keys.marks}9000000000000000003`)).toBeNull();

    // A sweep that read the old id (Compute says the name has another id now) plans a delete; the
    // replacement registers before it runs: the CAS on the ModifyIndex keeps the replacement.
    await registerMember(admin, { ...victim, id: '9000000000000000004' }, project);
    const racing = build({
      wrap: (client) => ({
        ...client,
        catalog: {
          ...client.catalog,
          deleteNodeCas: async (name, index) => {
            await registerMember(admin, victim, project);
            return client.catalog.deleteNodeCas(name, index);
          },
        },
      }),
    });
    const r = await racing.run({ dryRun: false });
    expect(r.report?.stale).toEqual([expect.objectContaining({ node: victim.name, reason: 'not-found' })]);
    expect(r.done).toEqual([
      expect.objectContaining({
        action: expect.objectContaining({ type: 'deregister' }),
        outcome: 'skipped',
      }),
      expect.objectContaining({ action: { type: 'purge-ledger' } }),
    ]);
    expect((await admin.catalog.node(victim.name))?.meta['gce-instance-id']).toBe(victim.id);
    await counting.close();
    await racing.close();
  }, 60_000);

  test('dry run reports what a real sweep would do and changes nothing', async () => {
    await registerMember(admin, stranger('backend-dry', '9000000000000000005'), project);
    // A drain entry of a gone instance, on its Nth absence: a real sweep would reap it.
    const drainKey = `${keys.draining}backend-dry-drained`;
    await admin.kv.set(drainKey, JSON.stringify({ instanceId: '9000000000000000013', since: 1 }));
    await admin.kv.set(`${keys.marks}9000000000000000013`, JSON.stringify({ absentCount: 2 }));
    const sweep = build();
    const before = await admin.catalog.nodes();
    const kvBefore = await Promise.all(
      [drainKey, `${keys.marks}9000000000000000013`].map((k) => admin.kv.get(k)),
    );
    const r = await sweep.run({ dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(r.report?.stale).toEqual([expect.objectContaining({ node: 'backend-dry' })]);
    expect(r.report?.actions).toContainEqual(expect.objectContaining({ type: 'delete-drain' }));
    expect(r.done.every((d) => d.outcome === 'not-attempted')).toBe(true);
    expect(await admin.catalog.nodes()).toEqual(before);
    expect(await admin.kv.keys(keys.root)).toEqual([`${keys.marks}9000000000000000013`]);
    expect(
      await Promise.all([drainKey, `${keys.marks}9000000000000000013`].map((k) => admin.kv.get(k))),
    ).toEqual(kvBefore);
    await sweep.close();
  }, 60_000);

  test('a failed read makes the sweep report-only: nothing deleted, nothing counted', async () => {
    await registerMember(admin, stranger('backend-old', '9000000000000000006'), project);
    // A group that cannot be read (404) next to the ones that can.
    const config = sweepConfig(project, [
      ...groups,
      { zone: zoneA, name: 'backend-missing', role: 'backend' },
    ]);
    const sweep = build({ config });
    const r = await sweep.run({ dryRun: false });
    expect(r.report?.reportOnly).toEqual(['incomplete-read']);
    expect(r.report?.incompleteReads).toEqual([
      expect.objectContaining({
        source: 'compute',
        status: 'failed',
        what: expect.stringContaining('backend-missing'),
      }),
    ]);
    expect(r.done).toEqual([]);
    expect(await nodeNames()).toContain('backend-old');
    expect(await admin.kv.keys(keys.marks)).toEqual([]);

    // Consul's health read failing does the same.
    const broken = build({
      wrap: (client) => ({
        ...client,
        health: { ...client.health, state: () => Promise.reject(new Error('connect ECONNREFUSED')) },
      }),
    });
    const r2 = await broken.run({ dryRun: false });
    expect(r2.report?.reportOnly).toEqual(['incomplete-read']);
    expect(await nodeNames()).toContain('backend-old');
    await sweep.close();
    await broken.close();
  }, 60_000);

  test('repairs are bounded: a budget per group, never below its healthy minimum', async () => {
    const live = await resetWorld();
    const backends = live.filter((m) => m.group === 'backend-a');
    for (const m of backends.slice(0, 2)) await registerMember(admin, m, project, 'critical');
    const config = sweepConfig(project, groups, {
      brokenGraceSeconds: 0,
      zoneDeadThreshold: 0.9,
      maxRecreations: 1,
    });
    const sweep = build({ config });
    const r = await sweep.run({ dryRun: false });
    expect(r.report?.broken.map((b) => b.name).sort()).toEqual(
      backends
        .slice(0, 2)
        .map((m) => m.name)
        .sort(),
    );
    const recreated = doneOf(r, 'recreate');
    expect(recreated).toHaveLength(1);
    expect(r.report?.refused).toEqual([expect.objectContaining({ reason: 'group-budget' })]);
    // The group recreates that one instance under its name with a new id.
    const target = recreated[0] as { name: string; instanceId: string };
    await eventually(async () => {
      const m = (await members()).find((x) => x.name === target.name);
      return m !== undefined && m.id !== target.instanceId;
    }, 30_000);
    await settled();
    // The other broken member waits while recreating it would leave fewer than the healthy minimum.
    const strict = build({
      config: sweepConfig(project, groups, {
        brokenGraceSeconds: 0,
        zoneDeadThreshold: 0.9,
        healthyMinimum: 3,
      }),
    });
    const after = await strict.run({ dryRun: false });
    expect(doneOf(after, 'recreate')).toEqual([]);
    expect(after.report?.refused).toEqual([expect.objectContaining({ reason: 'healthy-minimum' })]);
    await strict.close();
    await sweep.close();
  }, 90_000);

  test('a zone where most members look dead is only reported: no deletion, no recreation there', async () => {
    const live = await resetWorld();
    const inA = live.filter((m) => m.zone === zoneA);
    for (const m of inA) await registerMember(admin, m, project, 'critical');
    await registerMember(admin, stranger('backend-lost', '9000000000000000009'), project);
    const config = sweepConfig(project, groups, { brokenGraceSeconds: 0 });
    const sweep = build({ config });
    const r = await sweep.run({ dryRun: false });
    expect(r.report?.zones).toContainEqual(expect.objectContaining({ zone: zoneA, partitioned: true }));
    expect(r.report?.stale).toEqual([expect.objectContaining({ node: 'backend-lost' })]);
    const refusedHere = (r.report?.refused ?? []).filter((x) => x.reason === 'zone-partitioned');
    expect(refusedHere.map((x) => x.action.type).sort()).toEqual(
      expect.arrayContaining(['deregister', 'recreate']),
    );
    expect(doneOf(r, 'deregister')).toEqual([]);
    expect(doneOf(r, 'recreate')).toEqual([]);
    expect(await nodeNames()).toContain('backend-lost');
    await sweep.close();
  }, 60_000);

  test('one sweep acts at a time; a second exits cleanly with a log; a sweep that outlives its lock stops acting', async () => {
    await registerMember(admin, stranger('backend-locked', '9000000000000000007'), project);
    const logger = createLogger({ name: 'test', level: 'silent' });
    const holder = await acquireSweepLock(admin, { key: keys.lock, ttlSeconds: 10, owner: 'test', logger });
    expect(holder).not.toBeNull();
    const sweep = build();
    const blocked = await sweep.run({ dryRun: false });
    expect(blocked.status).toBe('locked');
    expect(logs.some((l) => l.reason === 'locked')).toBe(true);
    expect(await nodeNames()).toContain('backend-locked');
    await holder?.release();

    // Two at once: exactly one acts.
    const [a, b] = await Promise.all([sweep.run({ dryRun: false }), build().run({ dryRun: false })]);
    expect([a.status, b.status].sort()).toEqual(['completed', 'locked']);
    expect(await nodeNames()).not.toContain('backend-locked');

    // A sweep whose lock expires while it observes acts on nothing.
    await registerMember(admin, stranger('backend-late', '9000000000000000008'), project);
    let skew = 0;
    const slow = build({
      now: () => Date.now() + skew,
      wrap: (client) => ({
        ...client,
        health: {
          ...client.health,
          state: async (s) => {
            skew = 60_000;
            return client.health.state(s);
          },
        },
      }),
    });
    const late = await slow.run({ dryRun: false });
    expect(late.stopped).toBe('lock-lost');
    expect(late.done.every((d) => d.outcome === 'not-attempted')).toBe(true);
    expect(await nodeNames()).toContain('backend-late');
    await sweep.close();
    await slow.close();
  }, 60_000);

  test('a lock whose session is destroyed is no longer held', async () => {
    const logger = createLogger({ name: 'test', level: 'silent' });
    const lock = await acquireSweepLock(admin, { key: keys.lock, ttlSeconds: 10, owner: 'test', logger });
    expect(lock?.held()).toBe(true);
    await admin.session.destroy(lock?.session ?? '');
    await eventually(() => lock?.held() === false, 8000);
    await lock?.release();
  }, 20_000);

  test('a member on the drain list is neither counted dead nor recreated; drain entries of gone ids are reaped', async () => {
    const live = await resetWorld();
    const backends = live.filter((m) => m.group === 'backend-a');
    const drained = backends[0] as Member;
    // Going away on purpose: its services fail while instanceEvents drains it.
    await registerMember(admin, drained, project, 'critical');
    const since = Date.now();
    await admin.kv.set(`${keys.draining}${drained.name}`, JSON.stringify({ instanceId: drained.id, since }));
    // An entry left behind for an instance that is gone, and one that does not parse.
    await admin.kv.set(
      `${keys.draining}backend-departed`,
      JSON.stringify({ instanceId: '9000000000000000011', since }),
    );
    await admin.kv.set(`${keys.draining}backend-garbled`, '{"instanceId":"x"}');
    const config = sweepConfig(project, groups, { brokenGraceSeconds: 0, zoneDeadThreshold: 0.9 });
    const sweep = build({ config, lookupLimit: 0 });
    for (const n of [1, 2]) {
      const r = await sweep.run({ dryRun: false });
      expect(r.report?.reportOnly).toEqual([]);
      expect(r.report?.draining).toEqual([
        expect.objectContaining({ name: drained.name, instanceId: drained.id }),
      ]);
      expect(r.report?.broken).toEqual([]);
      expect(r.report?.zones).toContainEqual(expect.objectContaining({ zone: zoneA, dead: 0 }));
      expect(r.report?.drainLeftovers).toEqual([]);
      const mark = await admin.kv.get(`${keys.marks}9000000000000000011`);
      expect(JSON.parse(mark?.value ?? '{}')).toEqual({ absentCount: n });
    }
    const third = await sweep.run({ dryRun: false });
    expect(doneOf(third, 'recreate')).toEqual([]);
    expect(doneOf(third, 'delete-drain')).toEqual([
      expect.objectContaining({ node: 'backend-departed', instanceId: '9000000000000000011' }),
    ]);
    expect((await admin.kv.keys(keys.draining)).sort()).toEqual(
      [`${keys.draining}backend-garbled`, `${keys.draining}${drained.name}`].sort(),
    );
    // The same member without its drain entry is broken and repaired.
    await admin.kv.delete(`${keys.draining}${drained.name}`);
    const dry = await sweep.run({ dryRun: true });
    expect(dry.report?.broken).toEqual([expect.objectContaining({ name: drained.name })]);
    expect(dry.report?.actions).toContainEqual(
      expect.objectContaining({ type: 'recreate', instanceId: drained.id }),
    );
    await sweep.close();
  }, 60_000);

  test('least privilege: the sweep works with exactly its policies and never force-leaves', async () => {
    const limited = createConsulClient(
      loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: token }).consul,
    );
    const operator = createConsulClient(
      loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: operatorToken }).consul,
    );
    // A real gossip member whose instance is gone: killed, it is a failed member the leader keeps.
    const departed = stranger('backend-departed-agent', '9000000000000000012');
    const agent = await cluster.startClient({
      nodeName: departed.name,
      nodeMeta: identity(departed, project),
    });
    await agent.kill();

    // The main token cannot force-leave, write a server's node or KV outside its prefixes, nor hold
    // a session on a managed node; the force-leave token can do nothing but force-leave.
    await expect(limited.agent.forceLeave('backend-none')).rejects.toThrow(/403|Permission denied/i);
    await expect(limited.catalog.register({ node: server.name, address: '10.201.0.9' })).rejects.toThrow(
      /403|Permission denied/i,
    );
    await expect(limited.kv.set('gce-ilb-orchestrator/elsewhere/x', '1')).rejects.toThrow(
      /403|Permission denied/i,
    );
    await expect(operator.kv.get(`${keys.marks}1`)).rejects.toThrow(/403|Permission denied/i);
    // Sessions only on the servers' nodes: on a managed node, refused.
    const member = (await members())[0] as Member;
    const session = (node?: string) =>
      fetch(`${server.httpAddr}/v1/session/create`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': token },
        body: JSON.stringify({ ...(node ? { Node: node } : {}), TTL: '10s' }),
      });
    expect((await session(member.name)).status).toBe(403);
    const own = await session();
    expect(own.status).toBe(200);
    await admin.session.destroy(((await own.json()) as { ID: string }).ID);
    await expect(operator.catalog.deleteNodeCas(departed.name, 1)).rejects.toThrow(/403|Permission denied/i);

    // The Compute 404 makes it stale at once: deleted with the main token. Even given the operator
    // token, the sweep does not force-leave (instanceEvents alone holds one: functions/catalog.ts).
    const sweep = build();
    const r = await sweep.run({ dryRun: false });
    expect(r.status).toBe('completed');
    expect(doneOf(r, 'deregister')).toEqual([expect.objectContaining({ node: departed.name })]);
    expect(r.done.filter((d) => d.outcome === 'failed')).toEqual([]);
    expect(logs.some((l) => String(l.message).includes("left to Consul's reaping"))).toBe(true);
    expect(JSON.stringify(logs)).not.toContain(operatorToken);
    expect(JSON.stringify(logs)).not.toContain(token);
    // Not force-left: a failed member until Consul reaps it (the agents' advertise_reconnect_timeout).
    // Serf status 4 = failed (3 would be left, which a force-leave makes it).
    await eventually(
      async () => (await admin.agent.members()).find((m) => m.name === departed.name)?.status === 4,
      30_000,
    );
    await sweep.close();
    await agent.stop();
  }, 90_000);
});
