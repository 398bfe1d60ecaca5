import fc from 'fast-check';
import type { CatalogNode } from '../../shared/consul';
import { nodeMetaKeys } from '../../shared/contract';
import type { EventAction, EventTarget, InstanceEvent } from '../../shared/instance-events/parse';
import {
  needsConfirmation,
  staleDrainMs,
  needsLookup,
  planTarget,
  refuseForgedOperation,
  resolveInstanceId,
  type Observation,
} from '../../shared/instance-events/plan';
import { mergeRecord, type InstanceRecord, type Maintenance } from '../../shared/membership';

const X = '4512345678901234567';
const Y = '4512345678901234999';
const name = 'backend-7k2p';

const target = (instanceId?: string): EventTarget => ({
  project: 'ilb-demo',
  zone: 'us-central1-f',
  name,
  instanceId,
});
const event = (action: EventAction, time: number, extra: Partial<InstanceEvent> = {}): InstanceEvent => ({
  id: `e-${action}-${time}`,
  insertId: `i-${time}`,
  phase: 'single',
  // Stop/start cycles: the realistic way one instance id goes back and forth.
  method: {
    drain: 'compute.instances.stop',
    remove: 'compute.instances.stop',
    restore: 'compute.instances.start',
  }[action],
  action,
  time,
  targets: [target(X)],
  ...extra,
});
const node = (meta: Record<string, string>, modifyIndex = 10): CatalogNode => ({
  name,
  address: '10.0.0.7',
  meta,
  modifyIndex,
});
const obs = (o: Partial<Observation>): Observation => ({ node: null, record: null, ...o });
const gone = { found: false } as const;
const running = { found: true, id: X, status: 'RUNNING' } as const;

describe('planTarget: identity', () => {
  it('deregisters (CAS on the read index) and force-leaves the node carrying the departed id', () => {
    const plan = planTarget(
      event('remove', 5),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: X }, 42), current: gone }),
    );
    expect(plan.decision).toBe('deregister');
    expect(plan.steps).toEqual([
      { type: 'deregister', node: name, modifyIndex: 42, instanceId: X },
      { type: 'force-leave', node: name },
    ]);
    // A removal leaves no record: the deleted node is its own tombstone.
    expect(plan.mark).toBeUndefined();
  });

  it.each(['drain', 'remove'] as const)('%s leaves a same-name replacement alone', (action) => {
    const plan = planTarget(
      event(action, 5),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: Y }) }),
    );
    expect(plan).toMatchObject({ decision: 'skip', reason: 'replacement-present', steps: [] });
    // Nothing is recorded about an instance the event does not concern.
    expect(plan.mark).toBeUndefined();
  });

  it('asks Compute about a node without identity metadata, and only then', () => {
    expect(needsLookup(event('remove', 1), node({}))).toBe(true);
    expect(needsLookup(event('remove', 1), node({ [nodeMetaKeys.instanceId]: X }))).toBe(false);
    expect(needsLookup(event('remove', 1), null)).toBe(false);
    expect(needsLookup(event('restore', 1), node({}))).toBe(false);
  });

  it.each([
    ['gone from Compute', { found: false } as const, 'deregister', 'instance-gone'],
    [
      'stopped, same id',
      { found: true, id: X, status: 'TERMINATED' } as const,
      'deregister',
      'instance-gone',
    ],
    ['running, same id', { found: true, id: X, status: 'RUNNING' } as const, 'refuse', 'instance-running'],
    [
      'another instance owns the name',
      { found: true, id: Y, status: 'RUNNING' } as const,
      'skip',
      'replacement-present',
    ],
  ])('node without metadata, instance %s → %s', (_what, lookup, decision, reason) => {
    const plan = planTarget(event('remove', 5), target(X), obs({ node: node({}), lookup, current: lookup }));
    expect(plan).toMatchObject({ decision, reason });
  });

  it('forgets the record of an instance deleted for good, not of a stopped one', () => {
    const deleted = event('remove', 5, { method: 'compute.instances.delete' });
    const record: InstanceRecord = { drainAt: 3 };
    const present = obs({ node: node({ [nodeMetaKeys.instanceId]: X }), record, current: gone });
    const forget = { type: 'forget-instance', instanceId: X };
    expect(planTarget(deleted, target(X), present).steps).toContainEqual(forget);
    expect(planTarget(deleted, target(X), obs({ record })).steps).toContainEqual(forget);
    const stopped = planTarget(event('remove', 5), target(X), present);
    expect(stopped.steps.map((s) => s.type)).toEqual(['deregister', 'force-leave']);
  });

  it('records nothing for a restore with no drain to lift: its time is not confirmed by Compute', () => {
    const created = event('restore', 5, { method: 'compute.instances.insert' });
    expect(
      planTarget(created, target(X), obs({ node: node({ [nodeMetaKeys.instanceId]: X }) })).mark,
    ).toBeUndefined();
    expect(planTarget(event('restore', 5), target(X), obs({})).mark).toBeUndefined();
  });

  it('neither deletes nor force-leaves by name when the node is already gone (a replacement may be joining)', () => {
    const plan = planTarget(event('remove', 5), target(X), obs({}));
    expect(plan).toMatchObject({ decision: 'skip', reason: 'already-gone', steps: [] });
  });

  it("drains only what the entry's own operation or Compute confirms", () => {
    const first = event('drain', 5, { method: 'compute.instances.delete', operationId: 'operation-1' });
    const present = obs({ node: node({ [nodeMetaKeys.instanceId]: X }) });
    const op = (o: Partial<{ operationType: string; targetId: string; failed: boolean }>) =>
      ({
        found: true,
        operationType: 'delete',
        targetId: X,
        status: 'RUNNING',
        failed: false,
        ...o,
      }) as const;
    // The delete operation on this very id, accepted: drained at once, the instance still RUNNING.
    expect(planTarget(first, target(X), { ...present, operation: op({}) }).decision).toBe('drain');
    expect(needsConfirmation(first, { ...present, operation: op({}) }, X)).toBe(false);
    // Another operation type, another instance, a failed or unknown operation: Compute decides.
    for (const other of [op({ operationType: 'stop' }), op({ targetId: Y }), op({ failed: true }), gone]) {
      expect(needsConfirmation(first, { ...present, operation: other }, X)).toBe(true);
      expect(planTarget(first, target(X), { ...present, operation: other, current: running })).toMatchObject({
        decision: 'refuse',
        refused: 'drain',
        reason: 'instance-running',
        steps: [],
        mark: undefined,
      });
      const stopping = { found: true, id: X, status: 'STOPPING' } as const;
      expect(planTarget(first, target(X), { ...present, operation: other, current: stopping }).decision).toBe(
        'drain',
      );
    }
  });

  it('refuses an entry whose operation id is no Compute operation name, whatever it asks for', () => {
    for (const operationId of ['../../x', 'a/b?c', 'op-', 'Operation-1', 'x'.repeat(129)])
      for (const [action, refused] of [
        ['drain', 'drain'],
        ['remove', 'deregister'],
        ['restore', 'restore'],
      ] as const)
        expect(refuseForgedOperation(event(action, 5, { operationId }), target(X))).toEqual({
          target: target(X),
          instanceId: X,
          decision: 'refuse',
          reason: 'operation-name-invalid',
          steps: [],
          refused,
        });
    for (const operationId of [undefined, 'operation-1764160000123-64a1f0c2d4e5a-1b2c3d4e', '5123456789'])
      expect(refuseForgedOperation(event('drain', 5, { operationId }), target(X))).toBeUndefined();
  });

  it('lifts a drain long stale on an instance Compute reports running, and only then', () => {
    const record: InstanceRecord = { drainAt: 1, maintenance: { node: name, eventAt: 1 } };
    const present = { node: node({ [nodeMetaKeys.instanceId]: X }), record, current: running };
    const late = planTarget(event('remove', 1 + staleDrainMs + 1), target(X), obs(present));
    expect(late).toMatchObject({
      decision: 'refuse',
      steps: [{ type: 'undrain', node: name, instanceId: X }],
    });
    const soon = planTarget(event('remove', 1000), target(X), obs(present));
    expect(soon).toMatchObject({ decision: 'refuse', steps: [] });
  });
});

describe('planTarget: confirmation by Compute and scope', () => {
  const alive = node({ [nodeMetaKeys.instanceId]: X }, 42);
  const system = (method: string, time = 5): InstanceEvent =>
    event('remove', time, { method, confirm: 'gone' });
  const drained: InstanceRecord = { drainAt: 3, maintenance: { node: name, eventAt: 3 } };

  it('a late hostError leaves a node restarted in place (same id, running) alone', () => {
    const hostError = system('compute.instances.hostError');
    expect(needsConfirmation(hostError, { node: alive, record: null }, X)).toBe(true);
    expect(
      planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive', current: running })),
    ).toMatchObject({ decision: 'refuse', reason: 'instance-running', steps: [] });
    // Not yet confirmed: asked again on redelivery, never deregistered blind, out of gossip or not.
    expect(planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive' })).decision).toBe('retry');
    expect(planTarget(hostError, target(X), obs({ node: alive, gossip: 'absent' })).decision).toBe('retry');
    // Compute says it is down: deregistered.
    const down = { found: true, id: X, status: 'TERMINATED' } as const;
    expect(
      planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive', current: down })).decision,
    ).toBe('deregister');
    // The name now belongs to a successor (recreated): this instance is gone.
    const successor = { found: true, id: Y, status: 'RUNNING' } as const;
    expect(
      planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive', current: successor })).decision,
    ).toBe('deregister');
  });

  it.each(['STOPPING', 'PENDING_STOP', 'TERMINATED', 'SUSPENDING', 'SUSPENDED', 'DEPROVISIONING'])(
    'a removal is confirmed by status %s; not by a serving or unknown one',
    (status) => {
      const removal = event('remove', 5, { method: 'compute.instances.delete' });
      const current = { found: true, id: X, status } as const;
      expect(planTarget(removal, target(X), obs({ node: alive, current })).decision).toBe('deregister');
      for (const other of ['RUNNING', 'STAGING', 'PROVISIONING', 'REPAIRING', 'SOMETHING_NEW'])
        expect(
          planTarget(removal, target(X), obs({ node: alive, current: { ...current, status: other } }))
            .decision,
        ).toBe('refuse');
    },
  );

  it('a preempted VM still alive in gossip is deregistered but not force-left; once out of gossip it is', () => {
    const preempted = system('compute.instances.preempted');
    const stopping = { found: true, id: X, status: 'STOPPING' } as const;
    const live = planTarget(preempted, target(X), obs({ node: alive, gossip: 'alive', current: stopping }));
    expect(live.decision).toBe('deregister');
    expect(live.steps.map((s) => s.type)).toEqual(['deregister']);
    const out = planTarget(preempted, target(X), obs({ node: alive, gossip: 'absent', current: stopping }));
    expect(out.steps.map((s) => s.type)).toEqual(['deregister', 'force-leave']);
    // No serfHealth on the node says nothing of its agent: nobody is force-left.
    const unknown = planTarget(
      preempted,
      target(X),
      obs({ node: alive, gossip: 'unknown', current: stopping }),
    );
    expect(unknown.steps.map((s) => s.type)).toEqual(['deregister']);
  });

  it('automaticRestart (a restore logged later) supersedes the hostError delivered after it', () => {
    const plan = planTarget(
      system('compute.instances.hostError', 5),
      target(X),
      obs({ node: alive, gossip: 'absent', record: { restoreAt: 6 } }),
    );
    expect(plan).toMatchObject({ decision: 'skip', reason: 'superseded' });
  });

  it.each([
    ['still running', running, 'restore', 'back-in-service'],
    [
      'being deleted (stopping)',
      { found: true, id: X, status: 'STOPPING' } as const,
      'skip',
      'instance-going-away',
    ],
    ['terminated', { found: true, id: X, status: 'TERMINATED' } as const, 'skip', 'instance-going-away'],
    ['gone', gone, 'skip', 'instance-gone'],
    [
      'replaced by a same-name successor',
      { found: true, id: Y, status: 'RUNNING' } as const,
      'skip',
      'instance-gone',
    ],
  ])('a restore lifts a drain only of an instance Compute reports %s', (_what, current, decision, reason) => {
    const failed = event('restore', 9, { method: 'compute.instances.delete' });
    expect(needsConfirmation(failed, { node: alive, record: drained }, X)).toBe(true);
    const plan = planTarget(failed, target(X), obs({ node: alive, record: drained, current }));
    expect(plan).toMatchObject({ decision, reason });
    // A drain that stays records no restore: a later event is never taken for superseded.
    if (decision === 'skip') expect(plan.mark).toBeUndefined();
    // Unasked: asked on redelivery.
    expect(planTarget(failed, target(X), obs({ node: alive, record: drained })).decision).toBe('retry');
  });

  it('never acts on Consul servers or on nodes outside the managed roles', () => {
    const server = node({ [nodeMetaKeys.instanceId]: X, [nodeMetaKeys.role]: 'consul' });
    for (const action of ['drain', 'remove', 'restore'] as const) {
      expect(planTarget(event(action, 5), target(X), obs({ node: server, record: drained }))).toMatchObject({
        decision: 'skip',
        reason: 'not-managed',
        steps: [],
      });
    }
    const named = { ...target(X), name: 'consul-server-1' };
    expect(planTarget(event('remove', 5), named, obs({}))).toMatchObject({
      reason: 'not-managed',
      steps: [],
    });
  });

  it('ignores an instance id in node metadata that is not a decimal id', () => {
    const hostile = node({ [nodeMetaKeys.instanceId]: '../../acl/bootstrap' });
    expect(resolveInstanceId(target(), { node: hostile })).toBeUndefined();
    expect(planTarget(event('drain', 5), target(), obs({ node: hostile }))).toMatchObject({
      decision: 'skip',
      steps: [],
    });
  });
});

describe('planTarget: maintenance bookkeeping', () => {
  const maintenance = (eventAt: number): Maintenance => ({ node: name, eventAt });

  it('does not drain twice', () => {
    const record: InstanceRecord = { maintenance: maintenance(3) };
    const plan = planTarget(
      event('drain', 5),
      target(X),
      obs({
        node: node({ [nodeMetaKeys.instanceId]: X }),
        record,
        current: { ...running, status: 'STOPPING' },
      }),
    );
    expect(plan).toMatchObject({ decision: 'skip', reason: 'already-draining' });
  });

  it('lifts only a drain set by an earlier event for this id', () => {
    const present = node({ [nodeMetaKeys.instanceId]: X });
    const older = planTarget(
      event('restore', 9),
      target(X),
      obs({ node: present, record: { maintenance: maintenance(3) }, current: running }),
    );
    expect(older).toMatchObject({
      decision: 'restore',
      steps: [{ type: 'undrain', node: name, instanceId: X }],
    });
    const newer = planTarget(
      event('restore', 2),
      target(X),
      obs({ node: present, record: { maintenance: maintenance(3) } }),
    );
    expect(newer).toMatchObject({ decision: 'skip', reason: 'superseded' });
    const none = planTarget(event('restore', 9), target(X), obs({ node: present }));
    expect(none).toMatchObject({ decision: 'skip', reason: 'no-maintenance', mark: undefined });
  });

  it('clears the drain key of a node that is gone, on restore and on removal', () => {
    const record = { maintenance: maintenance(3) };
    expect(planTarget(event('restore', 9), target(X), obs({ record, current: running }))).toMatchObject({
      decision: 'restore',
      reason: 'node-gone',
      steps: [{ type: 'undrain', node: name, instanceId: X }],
    });
    const removed = planTarget(
      event('remove', 9),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: X }), record, current: gone }),
    );
    expect(removed.steps.map((s) => s.type)).toEqual(['deregister', 'undrain', 'force-leave']);
    // Recreated under the same name: the new node stays, the old id's drain key goes.
    const replaced = planTarget(
      event('remove', 9, { method: 'compute.instances.delete' }),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: Y }), record }),
    );
    expect(replaced).toMatchObject({
      decision: 'skip',
      reason: 'replacement-present',
      steps: [
        { type: 'undrain', node: name, instanceId: X },
        { type: 'forget-instance', instanceId: X },
      ],
    });
  });

  it('mergeRecord keeps the latest time whatever the merge order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('drainAt', 'restoreAt' as const), fc.nat()), {
          maxLength: 8,
        }),
        (marks) => {
          const apply = (list: typeof marks) =>
            list.reduce<InstanceRecord>((r, [field, at]) => mergeRecord(r, { field, at }, undefined), {});
          expect(apply([...marks].reverse())).toEqual(apply(marks));
        },
      ),
    );
  });
});

/**
 * Law: applying one instance's events in any order, with duplicates, ends where time order ends.
 * The world is a model of Consul for one node name: a live agent re-registers its node after a
 * deregistration (anti-entropy) and keeps its maintenance across that; a dead one does neither.
 */
describe('ordering and duplication law', () => {
  interface World {
    running: boolean;
    node: { modifyIndex: number } | null;
    /** The node's key in the drain list: the instance id it names. */
    drainKey: string | null;
    record: InstanceRecord | null;
    status: string;
  }

  // What Compute says now: the state the last event in time left (stopped, stopping, running).
  const statusAfter: Record<EventAction, string> = {
    remove: 'TERMINATED',
    drain: 'STOPPING',
    restore: 'RUNNING',
  };

  const apply = (world: World, e: InstanceEvent): 'done' | 'retry' => {
    const present = world.node ? node({ [nodeMetaKeys.instanceId]: X }, world.node.modifyIndex) : null;
    const current = { found: true, id: X, status: world.status } as const;
    const plan = planTarget(
      e,
      e.targets[0] ?? target(X),
      obs({ node: present, record: world.record, current }),
    );
    if (plan.decision === 'retry') return 'retry';
    let maintenance: Maintenance | null | undefined;
    for (const step of plan.steps) {
      if (step.type === 'drain') {
        world.drainKey = step.instanceId;
        maintenance = { node: step.node, eventAt: e.time };
      } else if (step.type === 'undrain') {
        if (world.drainKey === step.instanceId) world.drainKey = null;
        maintenance = null;
      } else if (step.type === 'forget-instance') {
        world.record = null;
        return 'done';
      } else if (step.type === 'deregister') {
        if (world.node?.modifyIndex !== step.modifyIndex) return 'done';
        // A live agent registers its node again at its next anti-entropy sync.
        world.node = world.running ? { modifyIndex: step.modifyIndex + 1 } : null;
      }
    }
    if (plan.mark || maintenance !== undefined)
      world.record = mergeRecord(world.record, plan.mark, maintenance);
    return 'done';
  };

  const run = (events: InstanceEvent[], last: EventAction) => {
    const world: World = {
      running: last !== 'remove',
      node: { modifyIndex: 1 },
      drainKey: null,
      record: null,
      status: statusAfter[last],
    };
    let queue = events;
    // Redeliveries of what asked for a retry, as Pub/Sub would.
    for (let round = 0; round < 5 && queue.length > 0; round++)
      queue = queue.filter((e) => apply(world, e) === 'retry');
    const drained = world.node !== null && world.drainKey === X;
    return { present: world.node !== null, drained };
  };

  const timeline = fc
    .uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 })
    .chain((times) =>
      fc.tuple(
        fc.array(fc.constantFrom<EventAction>('drain', 'remove', 'restore'), {
          minLength: times.length,
          maxLength: times.length,
        }),
        fc.constant(times),
      ),
    )
    .map(([actions, times]) => times.map((t, i) => event(actions[i] ?? 'drain', t)));

  it('holds for every permutation with duplicates', () => {
    fc.assert(
      fc.property(
        timeline,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        (events, duplicates, noise) => {
          const inTime = [...events].sort((a, b) => a.time - b.time);
          const last = inTime[inTime.length - 1]?.action ?? 'drain';
          const delivered = [...events, ...duplicates.map((d) => events[d % events.length] as InstanceEvent)];
          const keys = delivered.map(() => noise.next().value as number);
          const shuffled = delivered
            .map((e, i) => ({ e, k: keys[i] ?? 0 }))
            .sort((a, b) => a.k - b.k)
            .map((x) => x.e);
          expect(run(shuffled, last)).toEqual(run(inTime, last));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('ends where the last event in time says', () => {
    fc.assert(
      fc.property(timeline, (events) => {
        const inTime = [...events].sort((a, b) => a.time - b.time);
        const last = inTime[inTime.length - 1] as InstanceEvent;
        const outcome = run([...events].reverse(), last.action);
        if (last.action === 'remove') expect(outcome.present).toBe(false);
        else expect(outcome).toEqual({ present: true, drained: last.action === 'drain' });
      }),
      { numRuns: 300 },
    );
  });
});
