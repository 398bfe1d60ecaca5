import { Writable } from 'node:stream';
import type { InstanceLookup, InstanceRef } from '../../shared/gcp/instances';
import type { MetricPoint } from '../../shared/gcp/monitoring';
import type { OperationLookup, OperationRef } from '../../shared/gcp/operations';
import type { CatalogNodeDetail, HealthCheck, KvEntry } from '../../shared/consul';
import { kvPrefixes, nodeMetaKeys } from '../../shared/contract';
import { PermanentError, TransientError } from '../../shared/errors';
import { createInstanceEventsHandler, type InstanceEventsConsul } from '../../shared/instance-events/handler';
import type { Ledger } from '../../shared/ledger/ledger';
import { createLogger } from '../../shared/logging';
import { eventFixture } from '../fixtures/events';

type Json = Record<string, unknown>;
const ID = '4512345678901234567';
const NAME = 'backend-7k2p';
const { instanceRecords, draining } = kvPrefixes();
/** The clock of the tests: the fixtures' day, so their timestamps stay in the accepted window. */
const NOW = Date.parse('2026-11-26T12:00:00Z');
const retentionMs = 7 * 24 * 3600_000;

const wrap = (entry: unknown) => ({
  message: { data: Buffer.from(JSON.stringify(entry)).toString('base64') },
});
const deleteLast = () => eventFixture<Json>('audit-instance-delete-last.json');
const message = () => wrap(deleteLast());
/** An entry of the fixture with its fields changed by `edit`. */
const edited = (edit: (entry: Json & { protoPayload: Json; resource: { labels: Json } }) => void) => {
  const entry = deleteLast() as Json & { protoPayload: Json; resource: { labels: Json } };
  edit(entry);
  return wrap(entry);
};
const groupEntry = (instances: unknown, method = 'deleteInstances', extra: Json = {}) => ({
  insertId: `mig-${method}`,
  logName: 'projects/ilb-demo/logs/cloudaudit.googleapis.com%2Factivity',
  timestamp: '2026-11-26T11:00:00Z',
  operation: { id: 'operation-mig', first: true },
  resource: {
    type: 'gce_instance_group_manager',
    labels: { instance_group_manager_name: 'backend-mig', location: 'us-central1-f', project_id: 'ilb-demo' },
  },
  protoPayload: {
    methodName: `v1.compute.instanceGroupManagers.${method}`,
    resourceName: 'projects/123456789012/zones/us-central1-f/instanceGroupManagers/backend-mig',
    request: { instances },
  },
  ...extra,
});

const backendNode = (meta: Record<string, string> = {}, address = '10.0.0.7'): CatalogNodeDetail => ({
  name: NAME,
  address,
  meta: {
    [nodeMetaKeys.instanceId]: ID,
    [nodeMetaKeys.zone]: 'us-central1-f',
    [nodeMetaKeys.group]: 'backend-mig',
    [nodeMetaKeys.role]: 'backend',
    ...meta,
  },
  modifyIndex: 42,
  services: [],
});

/** An in-memory Consul with the calls the handler makes, recording every key written. */
function fakeConsul(nodes: CatalogNodeDetail[], checks: HealthCheck[] = []) {
  const kv = new Map<string, KvEntry>();
  const written: string[] = [];
  let index = 100;
  const put = (key: string, value: string) => {
    written.push(`${key}=${value}`);
    kv.set(key, { key, value, modifyIndex: ++index });
    return index;
  };
  const consul: InstanceEventsConsul = {
    catalog: {
      node: async (name) => nodes.find((n) => n.name === name) ?? null,
      nodes: async (options) =>
        nodes.filter((n) => Object.entries(options?.nodeMeta ?? {}).every(([k, v]) => n.meta[k] === v)),
      deleteNodeCas: async (name, modifyIndex) => {
        const i = nodes.findIndex((n) => n.name === name && n.modifyIndex === modifyIndex);
        if (i < 0) return 'conflict';
        nodes.splice(i, 1);
        return 'deleted';
      },
    },
    health: { node: async (name) => checks.filter((c) => c.Node === name) },
    kv: {
      get: async (key) => kv.get(key) ?? null,
      set: async (key, value) => void put(key, value),
      cas: async (key, value, at) => ((kv.get(key)?.modifyIndex ?? 0) === at ? put(key, value) : null),
      delete: async (key, options) => {
        if (options?.cas !== undefined && kv.get(key)?.modifyIndex !== options.cas) return false;
        return kv.delete(key) || true;
      },
    },
  };
  return { consul, kv, written, nodes };
}

function setup(
  options: {
    nodes?: CatalogNodeDetail[];
    checks?: HealthCheck[];
    instances?: (ref: InstanceRef) => Promise<InstanceLookup>;
    operations?: (ref: OperationRef) => Promise<OperationLookup>;
    ledger?: Ledger;
    consul?: (c: InstanceEventsConsul) => InstanceEventsConsul;
  } = {},
) {
  const logs: Json[] = [];
  const ledgerRuns: string[] = [];
  const lookups: InstanceRef[] = [];
  const forceLeft: string[] = [];
  const operationReads: OperationRef[] = [];
  const metrics: MetricPoint[] = [];
  const fake = fakeConsul(options.nodes ?? [backendNode()], options.checks);
  // Runs the work as the real ledger does: its result is recorded, a throw frees the id and propagates.
  const ledger: Ledger = options.ledger ?? {
    keyOf: (e) => e.id,
    purge: async () => [],
    async run(event, work) {
      const result = await work();
      ledgerRuns.push(event.id);
      return { duplicate: false, result };
    },
  };
  const handle = createInstanceEventsHandler({
    consul: options.consul ? options.consul(fake.consul) : fake.consul,
    instances: {
      get: async (ref) => {
        lookups.push(ref);
        return options.instances ? options.instances(ref) : { found: false };
      },
    },
    operations: {
      get: async (ref) => {
        operationReads.push(ref);
        return options.operations ? options.operations(ref) : { found: false };
      },
    },
    metrics: { write: async (_project, points) => void metrics.push(...points) },
    project: 'ilb-demo',
    ledger,
    logger: createLogger({
      name: 'instanceEvents',
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          logs.push(JSON.parse(chunk.toString()) as Json);
          done();
        },
      }),
    }),
    recordPrefix: instanceRecords,
    drainPrefix: draining,
    forceLeave: async (node) => forceLeft.push(node),
    dryRun: false,
    maxEventAgeMs: retentionMs,
    now: () => NOW,
  });
  return { handle, logs, ledgerRuns, lookups, forceLeft, operationReads, metrics, ...fake };
}

describe('instanceEvents handler: redeliver or acknowledge', () => {
  const failing = (deleteNodeCas: InstanceEventsConsul['catalog']['deleteNodeCas']) =>
    setup({ consul: (c) => ({ ...c, catalog: { ...c.catalog, deleteNodeCas } }) });

  it('acts and acknowledges when every step succeeds', async () => {
    const { handle, ledgerRuns, forceLeft } = setup();
    await expect(handle(message())).resolves.toMatchObject({
      status: 'applied',
      targets: [{ decision: 'applied', action: 'deregister', reason: 'instance-gone' }],
    });
    expect(ledgerRuns).toHaveLength(1);
    expect(forceLeft).toEqual([NAME]);
  });

  it('throws a transient failure, so Pub/Sub redelivers and the ledger records nothing', async () => {
    const { handle, logs, ledgerRuns } = failing(() =>
      Promise.reject(new TransientError('txn: HTTP 500: No cluster leader', { status: 500 })),
    );
    await expect(handle(message())).rejects.toBeInstanceOf(TransientError);
    expect(ledgerRuns).toHaveLength(0);
    expect(logs).toContainEqual(expect.objectContaining({ severity: 'WARNING', decision: 'retry' }));
  });

  it('acknowledges a permanent failure with an ERROR line, recorded so a redelivery is a duplicate', async () => {
    const { handle, logs, ledgerRuns } = failing(() =>
      Promise.reject(new PermanentError('txn: HTTP 403: Permission denied', { status: 403 })),
    );
    await expect(handle(message())).resolves.toMatchObject({
      status: 'applied',
      targets: [{ decision: 'failed', reason: expect.stringMatching(/403/) }],
    });
    expect(ledgerRuns).toHaveLength(1);
    expect(logs).toContainEqual(
      expect.objectContaining({ severity: 'ERROR', message: expect.stringMatching(/failed permanently/) }),
    );
  });

  it('classifies what an adapter throws unclassified (a 4xx-like answer is permanent)', async () => {
    const { handle } = failing(() =>
      Promise.reject(Object.assign(new Error('bad request'), { statusCode: 400 })),
    );
    await expect(handle(message())).resolves.toMatchObject({ targets: [{ decision: 'failed' }] });
  });

  it('acknowledges a completion write Consul refuses for good (413) with a clear ERROR line', async () => {
    const ledger: Ledger = {
      keyOf: (e) => e.id,
      purge: async () => [],
      async run(_event, work) {
        await work();
        throw new PermanentError('kv: HTTP 413: Value exceeds 524288 byte limit', { status: 413 });
      },
    };
    const { handle, logs } = setup({ ledger });
    await expect(handle(message())).resolves.toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/413/),
    });
    expect(logs).toContainEqual(
      expect.objectContaining({ severity: 'ERROR', decision: 'failed', status: 413 }),
    );
  });

  it('keeps what the ledger stores small, whatever the number of targets', async () => {
    let stored: unknown;
    const ledger: Ledger = {
      keyOf: (e) => e.id,
      purge: async () => [],
      async run(_event, work) {
        const result = await work();
        stored = result;
        return { duplicate: false, result };
      },
    };
    const { handle } = setup({ ledger, nodes: [] });
    const outcome = await handle(message());
    expect(outcome).toMatchObject({ status: 'applied' });
    expect(stored).toEqual({ targets: 1, decisions: { skipped: 1 } });
  });

  it('force-leaves a node whose delete-cas conflicted because it is already gone', async () => {
    const deletedMeanwhile = setup({
      consul: (c) => ({
        ...c,
        catalog: {
          ...c.catalog,
          // Deleted by someone else (an earlier attempt, the sweep) between the read and the delete.
          deleteNodeCas: async (name, index) => {
            await c.catalog.deleteNodeCas(name, index);
            return 'conflict';
          },
        },
      }),
    });
    await expect(deletedMeanwhile.handle(message())).resolves.toMatchObject({
      targets: [{ decision: 'applied', action: 'deregister', reason: 'instance-gone' }],
    });
    expect(deletedMeanwhile.forceLeft).toEqual([NAME]);
    // Re-registered meanwhile: the newer registration wins, nothing leaves.
    const raced = failing(async () => 'conflict');
    await expect(raced.handle(message())).resolves.toMatchObject({
      targets: [{ decision: 'skipped', reason: 'modified-concurrently' }],
    });
    expect(raced.forceLeft).toEqual([]);
  });
});

describe('instanceEvents handler: real event shapes', () => {
  it('finds the node of an instance named by its numeric id', async () => {
    const { handle, forceLeft } = setup();
    const byId = edited((e) => {
      e.protoPayload.resourceName = `projects/123456789012/zones/us-central1-f/instances/${ID}`;
    });
    await expect(handle(byId)).resolves.toMatchObject({
      targets: [{ instance: NAME, instanceId: ID, decision: 'applied', action: 'deregister' }],
    });
    expect(forceLeft).toEqual([NAME]);
  });

  it('drains through the KV drain list, with the instance id, whatever address the node claims', async () => {
    const injected = '10.0.0.7\n  server evil 6.6.6.6:80';
    const { handle, written, kv } = setup({ nodes: [backendNode({}, injected)] });
    const first = edited((e) => {
      e.operation = { id: 'operation-x', first: true };
    });
    await expect(handle(first)).resolves.toMatchObject({
      targets: [{ decision: 'applied', action: 'drain' }],
    });
    expect(JSON.parse(kv.get(`${draining}${NAME}`)?.value ?? '')).toEqual({
      instanceId: ID,
      since: Date.parse('2026-11-26T10:14:01.772Z'),
    });
    expect(written.join('\n')).not.toContain('6.6.6.6');
  });

  it('confirms every system removal with Compute, in gossip or not', async () => {
    const serf = (status: string): HealthCheck => ({
      Node: NAME,
      CheckID: 'serfHealth',
      Name: 'Serf',
      Status: status,
    });
    const hostError = edited((e) => {
      e.protoPayload.methodName = 'compute.instances.hostError';
      e.operation = { id: 'system-op', first: true, last: true };
    });
    const restarted = setup({
      checks: [serf('passing')],
      instances: async () => ({ found: true, id: ID, status: 'RUNNING' }),
    });
    await expect(restarted.handle(hostError)).resolves.toMatchObject({
      targets: [{ decision: 'refused', action: 'deregister', reason: 'instance-running' }],
    });
    // Compute was asked (its answer's id is compared), the node is still there.
    expect(restarted.lookups).toEqual([{ project: 'ilb-demo', zone: 'us-central1-f', name: NAME }]);
    expect(restarted.nodes).toHaveLength(1);
    const dead = setup({ checks: [serf('critical')] });
    await expect(dead.handle(hostError)).resolves.toMatchObject({
      targets: [{ decision: 'applied', action: 'deregister' }],
    });
    expect(dead.lookups).toHaveLength(1);
  });

  it('refuses a removal of an instance Compute reports running with the same id: nothing changes, counted', async () => {
    const live = setup({ instances: async () => ({ found: true, id: ID, status: 'RUNNING' }) });
    await expect(live.handle(message())).resolves.toMatchObject({
      status: 'applied',
      targets: [{ decision: 'refused', action: 'deregister', reason: 'instance-running' }],
    });
    expect(live.nodes).toHaveLength(1);
    expect(live.written).toEqual([]);
    expect(live.forceLeft).toEqual([]);
    expect(live.logs).toContainEqual(
      expect.objectContaining({ decision: 'refused', reason: 'instance-running' }),
    );
    expect(live.metrics).toEqual([
      { type: 'custom.googleapis.com/ilb/events_refused', labels: { reason: 'instance-running' }, value: 1 },
    ]);
  });

  it("drains at a delete's first entry once its Compute operation names this instance, without instances.get", async () => {
    const first = edited((e) => {
      e.operation = { id: 'operation-1764160000123-64a1f0c2d4e5a-1b2c3d4e-5f6a7b8c', first: true };
    });
    const op = {
      found: true,
      operationType: 'delete',
      targetId: ID,
      status: 'RUNNING',
      failed: false,
    } as const;
    const real = setup({
      operations: async () => op,
      instances: async () => ({ found: true, id: ID, status: 'RUNNING' }),
    });
    await expect(real.handle(first)).resolves.toMatchObject({
      targets: [{ decision: 'applied', action: 'drain' }],
    });
    expect(real.operationReads).toEqual([
      {
        project: 'ilb-demo',
        zone: 'us-central1-f',
        name: 'operation-1764160000123-64a1f0c2d4e5a-1b2c3d4e-5f6a7b8c',
      },
    ]);
    expect(real.lookups).toEqual([]);
    // A forged first: the operation is unknown (or another's), the instance runs: refused.
    const forged = setup({ instances: async () => ({ found: true, id: ID, status: 'RUNNING' }) });
    await expect(forged.handle(first)).resolves.toMatchObject({
      targets: [{ decision: 'refused', action: 'drain', reason: 'instance-running' }],
    });
    expect(forged.written).toEqual([]);
  });

  it('refuses an entry whose operation.id is no Compute operation name, asking Compute nothing', async () => {
    for (const [id, phase, action] of [
      ['../../x', { first: true }, 'drain'],
      ['a/b?c', { first: true }, 'drain'],
      ['operation-1%2F..', { last: true }, 'deregister'],
      ['Operation-UPPER', { last: true }, 'deregister'],
    ] as const) {
      const entry = edited((e) => {
        e.insertId = `forged-${id}`;
        e.operation = { id, ...phase };
      });
      // Without a node's identity metadata the handler would otherwise ask Compute who it is.
      const run = setup({
        nodes: [backendNode({ [nodeMetaKeys.instanceId]: '' })],
        operations: async () => ({
          found: true,
          operationType: 'delete',
          targetId: ID,
          status: 'DONE',
          failed: false,
        }),
        instances: async () => ({ found: false }),
      });
      await expect(run.handle(entry)).resolves.toMatchObject({
        status: 'applied',
        targets: [{ decision: 'refused', action, reason: 'operation-name-invalid' }],
      });
      expect({ id, operations: run.operationReads, instances: run.lookups, written: run.written }).toEqual({
        id,
        operations: [],
        instances: [],
        written: [],
      });
      expect(run.metrics).toEqual([
        {
          type: 'custom.googleapis.com/ilb/events_refused',
          labels: { reason: 'operation-name-invalid' },
          value: 1,
        },
      ]);
    }
  });
});

describe('instanceEvents handler: hostile input', () => {
  const polluted = () => ({}) as Record<string, unknown>;
  const oversized = edited((e) => {
    e.protoPayload.padding = 'x'.repeat(300 * 1024);
  });
  const cases: [string, unknown, RegExp][] = [
    [
      'far-future timestamp',
      edited((e) => {
        e.timestamp = '2099-01-01T00:00:00Z';
      }),
      /outside the accepted window/,
    ],
    [
      'timestamp older than the ledger remembers',
      edited((e) => {
        e.timestamp = '2026-01-01T00:00:00Z';
      }),
      /outside the accepted window/,
    ],
    ['entry larger than Cloud Logging allows', oversized, /exceeds/],
    [
      'path traversal in the instance id label',
      edited((e) => {
        e.resource.labels.instance_id = '../../acl/bootstrap';
      }),
      /instance_id/,
    ],
    [
      'path traversal in the resource name',
      edited((e) => {
        e.protoPayload.resourceName = 'projects/ilb-demo/zones/us-central1-f/instances/..%2F..%2Facl';
      }),
      /resourceName/,
    ],
    [
      'an id in the resource name that is not the labelled instance',
      edited((e) => {
        e.protoPayload.resourceName = 'projects/ilb-demo/zones/us-central1-f/instances/1234';
      }),
      /names instance 1234/,
    ],
    [
      'another project id in the resource name',
      edited((e) => {
        e.protoPayload.resourceName = 'projects/other-project/zones/us-central1-f/instances/backend-7k2p';
      }),
      /resourceName/,
    ],
  ];
  const groupCases: [string, unknown][] = [
    ['listing 1001 instances', wrap(groupEntry(Array.from({ length: 1001 }, (_, i) => `backend-${i}`)))],
    ['with a traversal in an instance', wrap(groupEntry(['zones/us-central1-f/instances/../../x']))],
    ['with an injected newline', wrap(groupEntry(['backend-a\nserver evil 6.6.6.6']))],
    ['naming a live member', wrap(groupEntry([NAME]))],
  ];

  it.each(groupCases)(
    'group entry %s: ignored (the sink carries none), nothing read or written',
    async (_what, input) => {
      const { handle, written, lookups, forceLeft } = setup();
      await expect(handle(input)).resolves.toMatchObject({
        status: 'ignored',
        reason: expect.stringMatching(/gce_instance_group_manager is not gce_instance/),
      });
      expect(written).toEqual([]);
      expect(lookups).toEqual([]);
      expect(forceLeft).toEqual([]);
    },
  );

  it.each(cases)('%s: acknowledged, nothing written', async (_what, input, reason) => {
    const { handle, written, lookups, forceLeft } = setup();
    await expect(handle(input)).resolves.toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(reason),
    });
    expect(written).toEqual([]);
    expect(lookups).toEqual([]);
    expect(forceLeft).toEqual([]);
    expect(polluted().polluted).toBeUndefined();
  });

  it('a far-future event does not make later events superseded', async () => {
    const { handle, nodes } = setup();
    const future = edited((e) => {
      e.timestamp = '2099-01-01T00:00:00Z';
      e.operation = { id: 'operation-future', first: true };
      e.protoPayload.methodName = 'v1.compute.instances.start';
      e.operation = { id: 'operation-future', last: true };
    });
    await handle(future);
    await expect(handle(message())).resolves.toMatchObject({
      targets: [{ decision: 'applied', action: 'deregister' }],
    });
    expect(nodes).toHaveLength(0);
  });

  it('accepts the project number in instance paths (the shape a MIG logs)', async () => {
    const { handle } = setup();
    await expect(handle(message())).resolves.toMatchObject({
      status: 'applied',
      targets: [{ instance: NAME, decision: 'applied', action: 'deregister' }],
    });
  });

  it('never acts on a Consul server, nor on a node whose metadata id is not a decimal id', async () => {
    const server: CatalogNodeDetail = {
      ...backendNode({ [nodeMetaKeys.role]: 'consul' }),
      name: 'consul-server-1',
    };
    const consulDelete = edited((e) => {
      e.protoPayload.resourceName = 'projects/ilb-demo/zones/us-central1-f/instances/consul-server-1';
    });
    const s = setup({ nodes: [server] });
    await expect(s.handle(consulDelete)).resolves.toMatchObject({
      targets: [{ decision: 'skipped', reason: 'not-managed' }],
    });
    expect(s.nodes).toHaveLength(1);
    expect(s.forceLeft).toEqual([]);
    const serverHostError = edited((e) => {
      e.protoPayload.resourceName = 'projects/ilb-demo/zones/us-central1-f/instances/consul-server-1';
      e.protoPayload.methodName = 'compute.instances.hostError';
    });
    await expect(s.handle(serverHostError)).resolves.toMatchObject({ targets: [{ reason: 'not-managed' }] });
    expect(s.lookups).toEqual([]);
    expect(s.written).toEqual([]);

    const hostile = setup({ nodes: [backendNode({ [nodeMetaKeys.instanceId]: '1/../../acl' })] });
    await hostile.handle(
      edited((e) => {
        e.operation = { id: 'operation-x', first: true };
      }),
    );
    expect(hostile.written).toEqual([]);
  });

  it('a prototype-pollution key in the labels is dropped: it neither pollutes nor supplies a label', async () => {
    const entry = JSON.stringify(deleteLast()).replace(
      '"labels":{',
      '"labels":{"__proto__":{"instance_id":"999","polluted":"yes"},"constructor":"x",',
    );
    const { handle } = setup();
    await expect(handle(wrap(JSON.parse(entry)))).resolves.toMatchObject({
      targets: [{ instanceId: ID, decision: 'applied', action: 'deregister' }],
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a prototype-pollution key in a group request neither pollutes nor acts', async () => {
    const entry = JSON.parse(
      JSON.stringify(groupEntry([NAME])).replace('"request":{', '"request":{"__proto__":{"polluted":"yes"},'),
    ) as unknown;
    const { handle } = setup();
    await handle(wrap(entry));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
