/**
 * Seat: a publisher on the instance-events topic (anyone holding `pubsub.topics.publish` on it, or a
 * sink writer identity abused). It can put any bytes in a message; the function sees exactly what
 * the log sink would deliver. Against a real Consul (ACLs on, the function's own tokens) with two
 * live backend agents in gossip, and Compute (the edge stand-in) reporting both RUNNING: forged
 * entries must leave the catalog, the drain list and gossip membership as they were, and be logged
 * `refused` (claims Compute does not confirm) or `ignored` (group entries: the sink carries none).
 */
import { Writable } from 'node:stream';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { kvPrefixes, nodeMetaKeys } from '../../shared/contract';
import type { MessageOutcome } from '../../shared/instance-events/handler';
import { instanceEventsFromConfig } from '../../shared/instance-events/wire';
import { createLogger } from '../../shared/logging';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import {
  forceLeaveToken,
  functionToken,
  startComputeEdge,
  type ComputeEdge,
} from '../integration/instance-events.support';

type Json = Record<string, unknown>;
const project = 'ilb-demo';
const zone = 'us-central1-f';
const victims = [
  { name: 'backend-a1', id: '4512345678901230001' },
  { name: 'backend-a2', id: '4512345678901230002' },
];
const NOW = Date.UTC(2026, 10, 26, 13);
const { draining } = kvPrefixes();

let seq = 0;
/** What the publisher sends: a LogEntry shaped as Google logs it, as Pub/Sub message data. */
function publish(entry: Json): Json {
  const n = ++seq;
  const full = {
    insertId: `forged-${n}`,
    logName: `projects/${project}/logs/cloudaudit.googleapis.com%2Factivity`,
    timestamp: new Date(NOW - 60_000 + n).toISOString(),
    ...entry,
  };
  return { message: { data: Buffer.from(JSON.stringify(full)).toString('base64'), messageId: `m-${n}` } };
}

const instanceEntry = (
  victim: { name: string; id: string },
  phase: Json,
  extra: { method?: string; path?: string; log?: string } = {},
): Json => ({
  ...(extra.log ? { logName: `projects/${project}/logs/cloudaudit.googleapis.com%2F${extra.log}` } : {}),
  operation: { id: `operation-1764160000123-64a1f0c2d4e5a-${victim.id.slice(-8)}-forged00`, ...phase },
  resource: { type: 'gce_instance', labels: { instance_id: victim.id, project_id: project, zone } },
  protoPayload: {
    methodName: extra.method ?? 'v1.compute.instances.delete',
    resourceName: extra.path ?? `projects/${project}/zones/${zone}/instances/${victim.name}`,
    authenticationInfo: { principalEmail: 'mallory@example.com' },
  },
});

describe('forged audit entries from the seat of a topic publisher', () => {
  let cluster: ConsulCluster;
  let server: ConsulAgent;
  let edge: ComputeEdge;
  let admin: ConsulClient;
  let handle: (data: unknown) => Promise<MessageOutcome>;
  const logs: Json[] = [];

  /** Catalog nodes, drain keys and gossip members: what a forged entry must not change. */
  const state = async () => {
    const nodes = (await admin.catalog.nodes()).map((n) => n.name).sort();
    const drains = await admin.kv.keys(draining);
    const members = (await server.consul.agent.members())
      .filter((m) => m.name.startsWith('backend-'))
      .map((m) => `${m.name}:${m.status}`)
      .sort();
    return { nodes, drains, members };
  };

  beforeAll(async () => {
    cluster = await startConsulCluster({ servers: 1 });
    server = cluster.servers[0] as ConsulAgent;
    const token = await functionToken(server);
    const operatorToken = await forceLeaveToken(server);
    edge = await startComputeEdge(`${cluster.prefix}.250`);
    for (const v of victims) {
      await cluster.startClient({
        nodeName: v.name,
        nodeMeta: {
          [nodeMetaKeys.instanceId]: v.id,
          [nodeMetaKeys.zone]: zone,
          [nodeMetaKeys.project]: project,
          [nodeMetaKeys.group]: 'backend-mig',
          [nodeMetaKeys.role]: 'backend',
        },
      });
      edge.instances.set(`${project}/${zone}/${v.name}`, { id: v.id, status: 'RUNNING' });
    }
    admin = createConsulClient(
      loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: cluster.token }).consul,
    );
    const config = loadConfig({
      CONSUL_HTTP_ADDR: server.httpAddr,
      CONSUL_HTTP_TOKEN: token,
      CONSUL_FORCE_LEAVE_TOKEN: operatorToken,
      COMPUTE_API_ENDPOINT: edge.endpoint,
      GOOGLE_CLOUD_PROJECT: project,
    });
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(JSON.parse(chunk.toString()) as Json);
        done();
      },
    });
    handle = instanceEventsFromConfig(config, {
      logger: createLogger({ name: 'instanceEvents', destination }),
      now: () => NOW,
      metrics: { write: () => Promise.resolve() },
    });
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  const expectUnchanged = async (before: Awaited<ReturnType<typeof state>>) => {
    expect(await state()).toEqual(before);
    // Serf member status 1: alive.
    expect(before.members).toEqual(victims.map((v) => `${v.name}:1`));
    expect(before.drains).toEqual([]);
  };

  const [a1, a2] = victims as [(typeof victims)[0], (typeof victims)[0]];
  const cases: [string, Json, 'refused' | 'ignored'][] = [
    [
      'a delete `last` for a running instance, same id',
      publish(instanceEntry(a1, { last: true })),
      'refused',
    ],
    ['a delete `first` naming no real operation', publish(instanceEntry(a2, { first: true })), 'refused'],
    [
      'a delete `last` under a project number that is not this project',
      publish(
        instanceEntry(
          a1,
          { last: true },
          { path: `projects/999999999999/zones/${zone}/instances/${a1.name}` },
        ),
      ),
      'refused',
    ],
    [
      'a preemption system event for a running instance',
      publish(
        instanceEntry(
          a2,
          { first: true, last: true },
          { method: 'compute.instances.preempted', log: 'system_event' },
        ),
      ),
      'refused',
    ],
    [
      'a group deleteInstances `first` naming many nodes',
      publish({
        operation: { id: 'operation-1764160000123-64a1f0c2d4e5a-mig-forged', first: true },
        resource: {
          type: 'gce_instance_group_manager',
          labels: { instance_group_manager_name: 'backend-mig', location: zone, project_id: project },
        },
        protoPayload: {
          methodName: 'v1.compute.instanceGroupManagers.deleteInstances',
          resourceName: `projects/${project}/zones/${zone}/instanceGroupManagers/backend-mig`,
          request: {
            instances: [
              ...victims.map((v) => `zones/${zone}/instances/${v.name}`),
              ...Array.from({ length: 500 }, (_, i) => `zones/${zone}/instances/backend-x${i}`),
            ],
          },
        },
      }),
      'ignored',
    ],
  ];

  it.each(cases)('%s changes nothing', async (_what, message, decision) => {
    const before = await state();
    logs.length = 0;
    const outcome = await handle(message);
    if (decision === 'ignored') expect(outcome).toMatchObject({ status: 'ignored' });
    else
      expect(outcome).toMatchObject({
        status: 'applied',
        targets: [{ decision: 'refused', reason: 'instance-running' }],
      });
    expect(logs).toContainEqual(expect.objectContaining({ decision }));
    // Gossip takes a moment to show a leave: look again after it.
    await new Promise((r) => setTimeout(r, 1500));
    await expectUnchanged(before);
  });

  it('a delete `first` whose operation id is a path asks Compute nothing and changes nothing', async () => {
    for (const id of ['../../x', 'a/b?c']) {
      const before = await state();
      const calls = edge.calls.length;
      const outcome = await handle(publish({ ...instanceEntry(a1, {}), operation: { id, first: true } }));
      expect(outcome).toMatchObject({
        status: 'applied',
        targets: [{ decision: 'refused', action: 'drain', reason: 'operation-name-invalid' }],
      });
      expect(edge.calls.slice(calls)).toEqual([]);
      await expectUnchanged(before);
    }
  });
});
