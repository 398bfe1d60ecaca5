import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { checkIds, kvPrefixes, nodeMetaKeys } from '../../shared/contract';
import type { MessageOutcome } from '../../shared/instance-events/handler';
import { instanceEventsFromConfig, instanceEventsKeys } from '../../shared/instance-events/wire';
import { createLedger } from '../../shared/ledger/ledger';
import { createLogger } from '../../shared/logging';
import { eventFixture } from '../fixtures/events';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import {
  catalogNode,
  forceLeaveToken,
  functionToken,
  nodeChecks,
  registerNode,
  startComputeEdge,
  type ComputeEdge,
} from './instance-events.support';

type Json = Record<string, unknown>;
const fixture = (name: string) => eventFixture<Json>(name);

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

let seq = 0;
/** A delete (or other lifecycle) audit entry for one instance, wrapped as a Pub/Sub message. */
function message(opts: {
  name: string;
  id: string;
  phase: 'first' | 'last';
  method?: string;
  time?: number;
  insertId?: string;
}): Json {
  const entry = fixture(
    opts.phase === 'first' ? 'audit-instance-delete-first.json' : 'audit-instance-delete-last.json',
  );
  const n = ++seq;
  entry.insertId = opts.insertId ?? `ins-${n}`;
  entry.timestamp = new Date(opts.time ?? Date.UTC(2026, 10, 26, 10, 0, 0) + n * 1000).toISOString();
  entry.operation = {
    id: `operation-${opts.name}-${opts.id}`,
    [opts.phase]: true,
    producer: 'compute.googleapis.com',
  };
  entry.resource = {
    type: 'gce_instance',
    labels: { instance_id: opts.id, project_id: 'ilb-demo', zone: 'us-central1-f' },
  };
  const payload = entry.protoPayload as Json;
  payload.resourceName = `projects/ilb-demo/zones/us-central1-f/instances/${opts.name}`;
  payload.methodName = opts.method ?? 'v1.compute.instances.delete';
  return { message: { data: Buffer.from(JSON.stringify(entry)).toString('base64'), messageId: String(n) } };
}

const meta = (id: string, extra: Record<string, string> = {}) => ({
  [nodeMetaKeys.instanceId]: id,
  [nodeMetaKeys.zone]: 'us-central1-f',
  [nodeMetaKeys.project]: 'ilb-demo',
  [nodeMetaKeys.group]: 'backend-mig',
  [nodeMetaKeys.role]: 'backend',
  ...extra,
});
const { instanceRecords, instanceEventsLedger, draining } = kvPrefixes();
/** The function's clock: a little after the messages' times, so they are in the accepted window. */
const NOW = Date.UTC(2026, 10, 26, 13);

describe('instanceEvents against a real Consul with ACLs', () => {
  let cluster: ConsulCluster;
  let consul: ConsulAgent;
  let token: string;
  let operatorToken: string;
  let edge: ComputeEdge;
  let api: ConsulClient;
  let handle: (data: unknown) => Promise<MessageOutcome>;
  const logs: Json[] = [];

  const build = (wrap: (api: ConsulClient) => ConsulClient = (a) => a, env: Record<string, string> = {}) => {
    const config = loadConfig({
      CONSUL_HTTP_ADDR: consul.httpAddr,
      CONSUL_HTTP_TOKEN: token,
      CONSUL_FORCE_LEAVE_TOKEN: operatorToken,
      COMPUTE_API_ENDPOINT: edge.endpoint,
      ORCHESTRATOR_CONSUL_TIMEOUT_MS: '1000',
      // Short, so a claim stranded by the Consul outage frees within the test's redeliveries.
      ORCHESTRATOR_LEDGER_IN_PROGRESS_TTL_S: '2',
      ...env,
    });
    const client = wrap(createConsulClient(config.consul));
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(JSON.parse(chunk.toString()) as Json);
        done();
      },
    });
    return instanceEventsFromConfig(config, {
      consul: client,
      logger: createLogger({ name: 'instanceEvents', destination }),
      now: () => NOW,
    });
  };
  const drainKey = async (node: string) => {
    const entry = await api.kv.get(`${draining}${node}`);
    return entry ? (JSON.parse(entry.value) as Json) : null;
  };

  beforeAll(async () => {
    cluster = await startConsulCluster({ servers: 1 });
    consul = cluster.servers[0] as ConsulAgent;
    token = await functionToken(consul);
    operatorToken = await forceLeaveToken(consul);
    edge = await startComputeEdge(`${cluster.prefix}.250`);
    const admin = loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: cluster.token });
    api = createConsulClient(admin.consul);
    handle = build();
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  it('drains through the KV drain list on the first entry, deregisters, force-leaves and clears it on the last', async () => {
    const agent = await cluster.startClient({ nodeName: 'backend-live', nodeMeta: meta('1001') });
    const first = await handle(message({ name: 'backend-live', id: '1001', phase: 'first' }));
    expect(first).toMatchObject({ status: 'applied', targets: [{ decision: 'applied', action: 'drain' }] });
    expect(await drainKey('backend-live')).toEqual({ instanceId: '1001', since: expect.any(Number) });
    // Nothing on the node itself: no maintenance, no check.
    expect(await agent.consul.agent.checks()).not.toHaveProperty(checkIds.nodeMaintenance);
    const record = await api.kv.get(`${instanceRecords}1001`);
    expect(JSON.parse(record?.value ?? '{}')).toMatchObject({ maintenance: { node: 'backend-live' } });

    await agent.kill();
    const last = await handle(message({ name: 'backend-live', id: '1001', phase: 'last' }));
    expect(last).toMatchObject({
      status: 'applied',
      targets: [{ decision: 'applied', action: 'deregister', reason: 'instance-gone' }],
    });
    expect(await catalogNode(consul, 'backend-live')).toBeNull();
    expect(await drainKey('backend-live')).toBeNull();
    // Deleted for good: the instance's record goes with it.
    expect(await api.kv.get(`${instanceRecords}1001`)).toBeNull();
    const members = await consul.consul.agent.members();
    expect(members.map((m) => m.name)).not.toContain('backend-live');
    // The leader registers a failed gossip member again; force-left and pruned, it stays gone.
    await new Promise((r) => setTimeout(r, 8000));
    expect(await catalogNode(consul, 'backend-live')).toBeNull();
  });

  it("the drain survives the agent's anti-entropy (a restart syncs it in full); a catalog check does not", async () => {
    const agent = await cluster.startClient({ nodeName: 'backend-sync', nodeMeta: meta('1101') });
    const at = (minute: number) => Date.UTC(2026, 10, 26, 12, minute);
    const event = (method: string, phase: 'first' | 'last', minute: number) =>
      message({ name: 'backend-sync', id: '1101', phase, method, time: at(minute) });
    edge.instances.set('ilb-demo/us-central1-f/backend-sync', { id: '1101', status: 'STOPPING' });
    await handle(event('v1.compute.instances.stop', 'first', 1));
    // What the old fallback did: a check registered through the catalog on a live agent's node.
    await api.catalog.register({
      node: 'backend-sync',
      address: agent.ip,
      skipNodeUpdate: true,
      check: { checkId: 'old-catalog-drain', name: 'old drain', status: 'critical' },
    });
    // Killed and started from its data dir, as a rebooted VM: it rejoins and syncs in full.
    await agent.kill();
    await agent.restart();
    await waitUntil(
      async () => !(await nodeChecks(consul, 'backend-sync')).some((c) => c.CheckID === 'old-catalog-drain'),
    );
    expect(await drainKey('backend-sync')).toEqual({ instanceId: '1101', since: at(1) });

    edge.instances.set('ilb-demo/us-central1-f/backend-sync', { id: '1101', status: 'RUNNING' });
    const started = await handle(event('v1.compute.instances.start', 'last', 2));
    expect(started).toMatchObject({
      targets: [{ decision: 'applied', action: 'restore', reason: 'back-in-service' }],
    });
    expect(await drainKey('backend-sync')).toBeNull();
    await agent.stop();
  });

  it('never connects to the address a node registered, whatever it is', async () => {
    let connections = 0;
    const trap = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    const trapIp = `${cluster.prefix}.251`;
    await new Promise<void>((resolve) => trap.listen(8500, trapIp, resolve));
    try {
      await registerNode(consul, 'backend-trap', meta('1201'), trapIp);
      const t0 = Date.UTC(2026, 10, 26, 11, 30);
      await handle(message({ name: 'backend-trap', id: '1201', phase: 'first', time: t0 }));
      expect(await drainKey('backend-trap')).toEqual({ instanceId: '1201', since: t0 });
      await handle(message({ name: 'backend-trap', id: '1201', phase: 'last', time: t0 + 1000 }));
      expect(await catalogNode(consul, 'backend-trap')).toBeNull();
      expect(connections).toBe(0);
    } finally {
      await new Promise((resolve) => trap.close(resolve));
    }
  });

  it('after a failed deletion, restores only an instance Compute reports running', async () => {
    const t0 = Date.UTC(2026, 10, 26, 11);
    const failedLast = (name: string, id: string) => {
      const msg = message({ name, id, phase: 'last', time: t0 + 5000 });
      const entry = JSON.parse(
        Buffer.from((msg.message as Json).data as string, 'base64').toString(),
      ) as Json;
      (entry.protoPayload as Json).status = { code: 13, message: 'internal error' };
      return { message: { data: Buffer.from(JSON.stringify(entry)).toString('base64') } };
    };
    for (const [name, id, status] of [
      ['backend-stays', '1002', 'RUNNING'],
      ['backend-going', '1003', 'STOPPING'],
    ] as const) {
      await registerNode(consul, name, meta(id));
      edge.instances.set(`ilb-demo/us-central1-f/${name}`, { id, status });
      // The deletion's own operation, accepted: the drain is confirmed while the instance still runs.
      edge.operations.set(`ilb-demo/us-central1-f/operation-${name}-${id}`, {
        id: '77',
        operationType: 'delete',
        targetId: id,
        status: 'RUNNING',
      });
      await handle(message({ name, id, phase: 'first', time: t0 }));
      expect(await drainKey(name)).toMatchObject({ instanceId: id });
    }
    expect(await handle(failedLast('backend-stays', '1002'))).toMatchObject({
      targets: [{ decision: 'applied', action: 'restore', reason: 'back-in-service' }],
    });
    expect(await drainKey('backend-stays')).toBeNull();
    // Still being deleted (by a group, say): the drain is never lifted.
    expect(await handle(failedLast('backend-going', '1003'))).toMatchObject({
      targets: [{ decision: 'skipped', reason: 'instance-going-away' }],
    });
    expect(await drainKey('backend-going')).toMatchObject({ instanceId: '1003' });
  });

  it('a late hostError leaves a node that restarted in place and still gossips', async () => {
    const agent = await cluster.startClient({ nodeName: 'backend-hosterr', nodeMeta: meta('1301') });
    edge.instances.set('ilb-demo/us-central1-f/backend-hosterr', { id: '1301', status: 'RUNNING' });
    const msg = message({
      name: 'backend-hosterr',
      id: '1301',
      phase: 'last',
      method: 'compute.instances.hostError',
    });
    expect(await handle(msg)).toMatchObject({
      targets: [{ decision: 'refused', action: 'deregister', reason: 'instance-running' }],
    });
    expect(await catalogNode(consul, 'backend-hosterr')).not.toBeNull();
    await agent.stop();
  });

  it('leaves a same-name replacement alone', async () => {
    await registerNode(consul, 'backend-replaced', meta('2002'));
    const outcome = await handle(message({ name: 'backend-replaced', id: '2001', phase: 'last' }));
    expect(outcome).toMatchObject({ targets: [{ decision: 'skipped', reason: 'replacement-present' }] });
    expect((await catalogNode(consul, 'backend-replaced'))?.meta[nodeMetaKeys.instanceId]).toBe('2002');
  });

  it('keeps a node re-registered between the read and the delete (CAS on ModifyIndex)', async () => {
    await registerNode(consul, 'backend-race', meta('3001'));
    // Re-registration by the replacement lands right after the function read the node.
    const racing = build((real) => ({
      ...real,
      catalog: {
        ...real.catalog,
        async node(name) {
          const seen = await real.catalog.node(name);
          if (name === 'backend-race') await registerNode(consul, 'backend-race', meta('3002'), '10.200.0.9');
          return seen;
        },
      },
    }));
    const outcome = await racing(message({ name: 'backend-race', id: '3001', phase: 'last' }));
    expect(outcome).toMatchObject({ targets: [{ decision: 'skipped', reason: 'modified-concurrently' }] });
    expect((await catalogNode(consul, 'backend-race'))?.meta[nodeMetaKeys.instanceId]).toBe('3002');
  });

  it('acts once on a message delivered three times, concurrently', async () => {
    await registerNode(consul, 'backend-dup', meta('4001'));
    const msg = message({ name: 'backend-dup', id: '4001', phase: 'last' });
    let deletes = 0;
    const counting = build((real) => ({
      ...real,
      catalog: {
        ...real.catalog,
        async deleteNodeCas(name, index) {
          deletes++;
          return real.catalog.deleteNodeCas(name, index);
        },
      },
    }));
    const settled = await Promise.allSettled([counting(msg), counting(msg), counting(msg)]);
    // A delivery racing the one in progress is refused (redelivered later), never run twice.
    const redelivered = await Promise.all(
      settled.map((s) => (s.status === 'fulfilled' ? s.value : counting(msg))),
    );
    expect(redelivered.filter((o) => o.status === 'applied')).toHaveLength(1);
    expect(redelivered.filter((o) => o.status === 'duplicate')).toHaveLength(2);
    expect(deletes).toBe(1);
    expect(await catalogNode(consul, 'backend-dup')).toBeNull();
  });

  it('checks a node without identity metadata against Compute before removing it', async () => {
    await registerNode(consul, 'backend-nometa-gone', {});
    await registerNode(consul, 'backend-nometa-alive', {});
    edge.instances.set('ilb-demo/us-central1-f/backend-nometa-alive', { id: '5002', status: 'RUNNING' });
    const gone = await handle(message({ name: 'backend-nometa-gone', id: '5001', phase: 'last' }));
    expect(gone).toMatchObject({ targets: [{ decision: 'applied', action: 'deregister' }] });
    expect(await catalogNode(consul, 'backend-nometa-gone')).toBeNull();
    const alive = await handle(message({ name: 'backend-nometa-alive', id: '5001', phase: 'last' }));
    expect(alive).toMatchObject({ targets: [{ decision: 'skipped', reason: 'replacement-present' }] });
    expect(await catalogNode(consul, 'backend-nometa-alive')).not.toBeNull();
    expect(edge.calls).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^GET \/compute\/v1\/projects\/ilb-demo\/zones\/us-central1-f\/instances\/backend-nometa-gone/,
        ),
      ]),
    );
  });

  it("ignores a MIG call's own entry (the sink carries none): its instances' entries drain them", async () => {
    await registerNode(consul, 'backend-mig-a', meta('6001'), '10.200.0.61');
    await registerNode(
      consul,
      'backend-mig-b',
      meta('6002', { [nodeMetaKeys.group]: 'other-mig' }),
      '10.200.0.62',
    );
    const entry = {
      insertId: 'mig-entry-1',
      logName: 'projects/ilb-demo/logs/cloudaudit.googleapis.com%2Factivity',
      timestamp: '2026-11-26T12:00:00Z',
      operation: { id: 'operation-mig-1', first: true },
      resource: {
        type: 'gce_instance_group_manager',
        labels: {
          instance_group_manager_name: 'backend-mig',
          location: 'us-central1-f',
          project_id: 'ilb-demo',
        },
      },
      protoPayload: {
        methodName: 'v1.compute.instanceGroupManagers.deleteInstances',
        resourceName: 'projects/ilb-demo/zones/us-central1-f/instanceGroupManagers/backend-mig',
        request: {
          instances: ['projects/123456789012/zones/us-central1-f/instances/backend-mig-a', 'backend-mig-b'],
        },
      },
    };
    const outcome = await handle({
      message: { data: Buffer.from(JSON.stringify(entry)).toString('base64') },
    });
    expect(outcome).toMatchObject({ status: 'ignored' });
    expect(await drainKey('backend-mig-a')).toBeNull();
    expect(await drainKey('backend-mig-b')).toBeNull();
  });

  it('acknowledges concurrent deliveries of one operation (duplicates, first and last at once) without a retry; ends as in order', async () => {
    const t0 = Date.UTC(2026, 10, 26, 11, 40);
    for (const [i, name] of ['backend-burst-a', 'backend-burst-b', 'backend-burst-c'].entries()) {
      const id = String(1301 + i);
      await registerNode(consul, name, meta(id));
      const first = message({ name, id, phase: 'first', time: t0 });
      const last = message({ name, id, phase: 'last', time: t0 + 1000 });
      // As a sink and Pub/Sub deliver them: each twice, the last alongside (or ahead of) the first.
      const order = [
        [first, first, last, last],
        [last, first, last, first],
        [last, last, first, first],
      ][i]!;
      const outcomes = await Promise.all(order.map((m) => handle(m)));
      expect(outcomes.map((o) => o.status).sort()).toEqual(['applied', 'applied', 'duplicate', 'duplicate']);
      expect(await catalogNode(consul, name)).toBeNull();
      // No drain left behind for a node already gone.
      expect(await drainKey(name)).toBeNull();
    }
  });

  it('in dry-run mode logs the plan and changes nothing', async () => {
    await registerNode(consul, 'backend-dry', meta('9001'));
    const dry = build(undefined, { DRY_RUN: 'true' });
    logs.length = 0;
    const msg = message({ name: 'backend-dry', id: '9001', phase: 'last' });
    const outcome = await dry(msg);
    expect(outcome).toMatchObject({
      status: 'planned',
      targets: [{ decision: 'planned', action: 'deregister' }],
    });
    expect(await catalogNode(consul, 'backend-dry')).not.toBeNull();
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: 'dry run: plan not applied',
        plan: expect.objectContaining({
          steps: [expect.objectContaining({ type: 'deregister' }), expect.anything()],
        }),
      }),
    );
    // Nothing recorded either: the same message, delivered to a live function, still acts.
    const real = await handle(msg);
    expect(real).toMatchObject({
      status: 'applied',
      targets: [{ decision: 'applied', action: 'deregister' }],
    });
  });

  it("purges expired ledger days with the function's own token", async () => {
    const expired = `${instanceEventsLedger}2020-01-01/some-event`;
    expect(await api.kv.cas(expired, '{}', 0)).not.toBeNull();
    const config = loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: token });
    const ledger = createLedger({
      now: () => NOW,
      kv: createConsulClient(config.consul).kv,
      prefix: instanceEventsKeys(config.kvPrefix).ledger,
      inProgressTtlMs: config.ledger.inProgressTtlMs,
      retentionMs: config.ledger.retentionMs,
    });
    expect(await ledger.purge()).toEqual([`${instanceEventsLedger}2020-01-01/`]);
    expect(await api.kv.get(expired)).toBeNull();
  });

  it('acknowledges a permanent failure (ACL denied) with an ERROR line instead of a redelivery', async () => {
    await registerNode(consul, 'backend-denied', meta('9101'));
    const denied = build(undefined, { CONSUL_HTTP_TOKEN: randomUUID() });
    logs.length = 0;
    const outcome = await denied(message({ name: 'backend-denied', id: '9101', phase: 'last' }));
    expect(outcome).toMatchObject({ status: 'failed', reason: expect.stringMatching(/HTTP 403/) });
    expect(logs).toContainEqual(
      expect.objectContaining({ severity: 'ERROR', decision: 'failed', status: 403 }),
    );
    expect(JSON.stringify(logs)).not.toContain(operatorToken);
    expect(await catalogNode(consul, 'backend-denied')).not.toBeNull();
  });

  it('acknowledges garbage with one structured log line and changes nothing', async () => {
    logs.length = 0;
    const outcome = await handle({ message: { data: Buffer.from('{"hello":1}').toString('base64') } });
    expect(outcome).toMatchObject({ status: 'rejected' });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ severity: 'WARNING', decision: 'rejected', outcome: 'malformed' });
    expect(JSON.stringify(logs)).not.toContain(token);
  });

  it('loses nothing when Consul restarts in the middle of a batch', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `backend-batch-${i}`);
    for (const [i, name] of names.entries()) await registerNode(consul, name, meta(String(7000 + i)));
    const messages = names.map((name, i) =>
      message({ name, id: String(7000 + i), phase: 'last', insertId: `batch-${i}` }),
    );
    let pending = messages;
    let restarted = false;
    let redelivered = 0;
    // Pub/Sub redelivers whatever threw; the batch runs until every message was acknowledged.
    for (let round = 0; round < 10 && pending.length > 0; round++) {
      const failed: Json[] = [];
      for (const [i, msg] of pending.entries()) {
        if (!restarted && i === 7) {
          restarted = true;
          await consul.kill();
          setTimeout(() => void consul.restart(), 1500);
        }
        await handle(msg).catch(() => failed.push(msg));
      }
      if (failed.length > 0) await new Promise((r) => setTimeout(r, 1000));
      redelivered += failed.length;
      pending = failed;
    }
    expect(restarted).toBe(true);
    expect(redelivered).toBeGreaterThan(0);
    expect(pending).toHaveLength(0);
    for (const name of names) expect(await catalogNode(consul, name)).toBeNull();
    for (const [i, name] of names.entries()) {
      const id = encodeURIComponent(`batch-${i}/operation-${name}-${7000 + i}/last`);
      const entry = await api.kv.get(`${instanceEventsLedger}2026-11-26/${id}`);
      expect(JSON.parse(entry?.value ?? '{}')).toMatchObject({ state: 'completed' });
    }
  });
});
