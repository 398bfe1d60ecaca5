import { randomUUID } from 'node:crypto';
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
  functionToken,
  nodeChecks,
  registerNode,
  startComputeEdge,
  type ComputeEdge,
} from './instance-events.support';

type Json = Record<string, unknown>;
const fixture = (name: string) => eventFixture<Json>(name);

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
const drainCheckId = checkIds.drain;
const { instanceRecords, instanceEventsLedger } = kvPrefixes();

describe('instanceEvents against a real Consul with ACLs', () => {
  let cluster: ConsulCluster;
  let consul: ConsulAgent;
  let token: string;
  let edge: ComputeEdge;
  let api: ConsulClient;
  let handle: (data: unknown) => Promise<MessageOutcome>;
  const logs: Json[] = [];

  const build = (wrap: (api: ConsulClient) => ConsulClient = (a) => a, env: Record<string, string> = {}) => {
    const config = loadConfig({
      CONSUL_HTTP_ADDR: consul.httpAddr,
      CONSUL_HTTP_TOKEN: token,
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
    });
  };

  beforeAll(async () => {
    cluster = await startConsulCluster({ servers: 1 });
    consul = cluster.servers[0] as ConsulAgent;
    token = await functionToken(consul);
    edge = await startComputeEdge(`${cluster.prefix}.250`);
    const admin = loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: cluster.token });
    api = createConsulClient(admin.consul);
    handle = build();
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  it('drains through the node agent on the first entry, deregisters and force-leaves on the last', async () => {
    const agent = await cluster.startClient({ nodeName: 'backend-live', nodeMeta: meta('1001') });
    const first = await handle(message({ name: 'backend-live', id: '1001', phase: 'first' }));
    expect(first).toMatchObject({ status: 'applied', targets: [{ decision: 'drain' }] });
    expect(await agent.consul.agent.checks()).toHaveProperty(checkIds.nodeMaintenance);
    const record = await api.kv.get(`${instanceRecords}1001`);
    expect(JSON.parse(record?.value ?? '{}')).toMatchObject({
      maintenance: { mode: 'agent', node: 'backend-live' },
    });

    await agent.kill();
    const last = await handle(message({ name: 'backend-live', id: '1001', phase: 'last' }));
    expect(last).toMatchObject({
      status: 'applied',
      targets: [{ decision: 'deregister', reason: 'instance-gone' }],
    });
    expect(await catalogNode(consul, 'backend-live')).toBeNull();
    // Deleted for good: the instance's record goes with it.
    expect(await api.kv.get(`${instanceRecords}1001`)).toBeNull();
    const members = await consul.consul.agent.members();
    expect(members.map((m) => m.name)).not.toContain('backend-live');
    // The leader registers a failed gossip member again; force-left and pruned, it stays gone.
    await new Promise((r) => setTimeout(r, 8000));
    expect(await catalogNode(consul, 'backend-live')).toBeNull();
  });

  it("lifts on restart only the maintenance it set, never an operator's", async () => {
    const agent = await cluster.startClient({ nodeName: 'backend-restart', nodeMeta: meta('1101') });
    const maintenance = async () => (await agent.consul.agent.checks())[checkIds.nodeMaintenance];
    const at = (minute: number) => Date.UTC(2026, 10, 26, 12, minute);
    const event = (method: string, phase: 'first' | 'last', minute: number) =>
      message({ name: 'backend-restart', id: '1101', phase, method, time: at(minute) });

    await handle(event('v1.compute.instances.stop', 'first', 1));
    expect((await maintenance())?.notes).toMatch(/instance 1101/);
    const started = await handle(event('v1.compute.instances.start', 'last', 2));
    expect(started).toMatchObject({ targets: [{ decision: 'restore', reason: 'back-in-service' }] });
    expect(await maintenance()).toBeUndefined();

    // An operator has the node in maintenance for their own reason; Consul keeps one maintenance
    // per node, so the function's drain leaves the operator's in place, and its restore too.
    await agent.consul.agent.maintenance(true, 'disk swap');
    await handle(event('v1.compute.instances.stop', 'first', 3));
    await handle(event('v1.compute.instances.start', 'last', 4));
    expect((await maintenance())?.notes).toBe('disk swap');
    await agent.stop();
  });

  it('drains a node whose agent is unreachable with a critical catalog check, lifted on restore', async () => {
    await registerNode(consul, 'backend-noagent', meta('1002'), '10.200.0.2');
    const t0 = Date.UTC(2026, 10, 26, 11);
    const drained = await handle(message({ name: 'backend-noagent', id: '1002', phase: 'first', time: t0 }));
    expect(drained).toMatchObject({
      targets: [{ decision: 'drain', reason: 'going-away (maintenance via catalog)' }],
    });
    expect(await nodeChecks(consul, 'backend-noagent')).toContainEqual(
      expect.objectContaining({ CheckID: drainCheckId, Status: 'critical' }),
    );
    // The deletion failed: the instance stays, so its drain is lifted.
    const restore = message({ name: 'backend-noagent', id: '1002', phase: 'last', time: t0 + 5000 });
    const entry = JSON.parse(
      Buffer.from((restore.message as Json).data as string, 'base64').toString(),
    ) as Json;
    (entry.protoPayload as Json).status = { code: 13, message: 'internal error' };
    const restored = await handle({
      message: { data: Buffer.from(JSON.stringify(entry)).toString('base64') },
    });
    expect(restored).toMatchObject({ targets: [{ decision: 'restore', reason: 'back-in-service' }] });
    expect((await nodeChecks(consul, 'backend-noagent')).map((c) => c.CheckID)).not.toContain(drainCheckId);
    expect(await catalogNode(consul, 'backend-noagent')).not.toBeNull();
  });

  it('leaves a same-name replacement alone', async () => {
    await registerNode(consul, 'backend-replaced', meta('2002'));
    const outcome = await handle(message({ name: 'backend-replaced', id: '2001', phase: 'last' }));
    expect(outcome).toMatchObject({ targets: [{ decision: 'skip', reason: 'replacement-present' }] });
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
    expect(outcome).toMatchObject({ targets: [{ decision: 'skip', reason: 'modified-concurrently' }] });
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
    expect(gone).toMatchObject({ targets: [{ decision: 'deregister' }] });
    expect(await catalogNode(consul, 'backend-nometa-gone')).toBeNull();
    const alive = await handle(message({ name: 'backend-nometa-alive', id: '5001', phase: 'last' }));
    expect(alive).toMatchObject({ targets: [{ decision: 'skip', reason: 'replacement-present' }] });
    expect(await catalogNode(consul, 'backend-nometa-alive')).not.toBeNull();
    expect(edge.calls).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^GET \/compute\/v1\/projects\/ilb-demo\/zones\/us-central1-f\/instances\/backend-nometa-gone/,
        ),
      ]),
    );
  });

  it('drains the instances a MIG call names, only members of that group', async () => {
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
          instances: [
            'zones/us-central1-f/instances/backend-mig-a',
            'zones/us-central1-f/instances/backend-mig-b',
          ],
        },
      },
    };
    const outcome = await handle({
      message: { data: Buffer.from(JSON.stringify(entry)).toString('base64') },
    });
    expect(outcome).toMatchObject({
      targets: [
        { instance: 'backend-mig-a', instanceId: '6001', decision: 'drain' },
        { instance: 'backend-mig-b', decision: 'skip', reason: 'not-in-group' },
      ],
    });
    expect((await nodeChecks(consul, 'backend-mig-a')).map((c) => c.CheckID)).toContain(drainCheckId);
    expect((await nodeChecks(consul, 'backend-mig-b')).map((c) => c.CheckID)).not.toContain(drainCheckId);
  });

  it('in dry-run mode logs the plan and changes nothing', async () => {
    await registerNode(consul, 'backend-dry', meta('9001'));
    const dry = build(undefined, { DRY_RUN: 'true' });
    logs.length = 0;
    const msg = message({ name: 'backend-dry', id: '9001', phase: 'last' });
    const outcome = await dry(msg);
    expect(outcome).toMatchObject({ status: 'planned', targets: [{ decision: 'deregister' }] });
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
    expect(real).toMatchObject({ status: 'applied', targets: [{ decision: 'deregister' }] });
  });

  it("purges expired ledger days with the function's own token", async () => {
    const expired = `${instanceEventsLedger}2020-01-01/some-event`;
    expect(await api.kv.cas(expired, '{}', 0)).not.toBeNull();
    const config = loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: token });
    const ledger = createLedger({
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
      expect.objectContaining({ severity: 'ERROR', decision: 'dropped', status: 403 }),
    );
    expect(await catalogNode(consul, 'backend-denied')).not.toBeNull();
  });

  it('acknowledges garbage with one structured log line and changes nothing', async () => {
    logs.length = 0;
    const outcome = await handle({ message: { data: Buffer.from('{"hello":1}').toString('base64') } });
    expect(outcome).toMatchObject({ status: 'rejected' });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ severity: 'WARNING', decision: 'ignored', outcome: 'malformed' });
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
