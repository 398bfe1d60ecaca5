import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { PermanentError, TransientError } from '../../shared/errors';
import type { Autoscaler } from '../../shared/gcp/autoscaler-schema';
import type { AutoscalersPort } from '../../shared/gcp/autoscalers';
import { OperationFailedError, RequestRefusedError, ResourceBusyError } from '../../shared/gcp/errors';
import { createLogger } from '../../shared/logging';
import {
  actOnAutoscaler,
  ConcurrentUpdateError,
  type ActDeps,
  type ActJob,
} from '../../shared/scaling-alerts/act';
import { metricTypes, type Plan } from '../../shared/scaling-alerts/plan';
import { parseRuleFile } from '../../shared/scaling-alerts/rules';
import {
  emptyState,
  type AutoscalerState,
  type StateStore,
  type StoredState,
} from '../../shared/scaling-alerts/state';

/**
 * The one loop of act.ts with an in-memory record store and a scripted Compute: the record is
 * written before the patch, put back when Compute refuses, kept when it is busy (read and plan
 * again), and each failure ends as the shared error model says.
 */

const examplePath = path.join(__dirname, '../../infra-scripts/config/scaling-rules.example.json');
const parsed = parseRuleFile(JSON.parse(readFileSync(examplePath, 'utf8')));
if (!parsed.ok) throw new Error(parsed.reason);
const rules = parsed.rules;

const ref = { project: 'p', zone: 'z', name: 'ilb-haproxy' };
const autoscaler: Autoscaler = { name: 'ilb-haproxy', autoscalingPolicy: { minNumReplicas: 2, mode: 'ON' } };
const leased: AutoscalerState = { ...emptyState(), changes: [1000] };

function memoryStore(initial?: AutoscalerState) {
  let rec: StoredState | null = initial ? { value: initial, index: 1 } : null;
  let index = 1;
  const store: StateStore & { record(): StoredState | null; casFails: number } = {
    casFails: 0,
    record: () => rec,
    get: () => Promise.resolve(rec && { ...rec }),
    cas(_key, value, at) {
      if (store.casFails > 0) {
        store.casFails--;
        return Promise.resolve(false);
      }
      if ((rec?.index ?? 0) !== at) return Promise.resolve(false);
      rec = { value, index: ++index };
      return Promise.resolve(true);
    },
    remove(_key, at) {
      if (rec?.index !== at) return Promise.resolve(false);
      rec = null;
      return Promise.resolve(true);
    },
  };
  return store;
}

function compute(apply: AutoscalersPort['apply']): AutoscalersPort & { applied: number } {
  const port = {
    applied: 0,
    get: () => Promise.resolve(autoscaler),
    ownerLabels: () => Promise.resolve({}),
    apply: async (...args: Parameters<AutoscalersPort['apply']>) => {
      port.applied++;
      return apply(...args);
    },
  };
  return port;
}

const plan = (state: AutoscalerState | null): Plan => ({
  autoscaler: 'projects/p/zones/z/autoscalers/ilb-haproxy',
  tier: 'haproxy',
  decision: 'applied',
  reason: 'escalate',
  withheld: [],
  refused: [],
  patch: { name: 'ilb-haproxy', autoscalingPolicy: { mode: 'ONLY_SCALE_OUT' } },
  requestId: 'r-1',
  state: leased,
  metrics: [
    {
      type: metricTypes.decision,
      labels: { autoscaler: 'a', tier: 'haproxy', decision: 'applied' },
      value: state ? 2 : 1,
    },
  ],
});

function setup(store: StateStore, autoscalers: AutoscalersPort) {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const deps: ActDeps = {
    rules,
    autoscalers,
    state: store,
    logger: createLogger({ name: 'act-test', destination }),
    clock: () => 5000,
    maxAttempts: 3,
    retryDelayMs: 1,
  };
  const seen: (AutoscalerState | null)[] = [];
  const job: ActJob & { recordedOnly?: false; quiet?: undefined } = {
    ref,
    name: 'projects/p/zones/z/autoscalers/ilb-haproxy',
    tier: 'haproxy',
    key: 'k',
    dryRun: false,
    missing: 'refused',
    message: 'scalingAlerts decision',
    fields: {},
    plan: ({ state }) => {
      seen.push(state);
      return plan(state);
    },
  };
  return { deps, job, logs, seen };
}

test('applied: the record is written before the patch, and the outcome names the operation', async () => {
  const store = memoryStore();
  const port = compute(() => {
    expect(store.record()?.value).toEqual(leased);
    return Promise.resolve({ operation: 'op-1', method: 'patch' });
  });
  const { deps, job, logs } = setup(store, port);
  const r = await actOnAutoscaler(deps, job);
  expect(r.outcome).toMatchObject({ decision: 'applied', operation: 'op-1', attempts: 1, requestId: 'r-1' });
  expect(logs).toEqual([expect.objectContaining({ decision: 'applied', method: 'patch', attempt: 1 })]);
});

test('a dry run plans and reports planned, writing nothing', async () => {
  const store = memoryStore();
  const port = compute(() => Promise.reject(new Error('not called')));
  const { deps, job, logs } = setup(store, port);
  const r = await actOnAutoscaler(deps, { ...job, dryRun: true });
  expect(r.outcome.decision).toBe('planned');
  expect(store.record()).toBeNull();
  expect(port.applied).toBe(0);
  expect(logs[0]).toMatchObject({ decision: 'planned', dryRun: true });
});

test('a refused patch puts the record back and ends failed, with the decision metric saying so', async () => {
  const store = memoryStore();
  const port = compute(() => Promise.reject(new RequestRefusedError('patch: 400 invalid', { status: 400 })));
  const { deps, job, logs } = setup(store, port);
  const r = await actOnAutoscaler(deps, job);
  expect(r.outcome).toMatchObject({ decision: 'failed', reason: 'patch: 400 invalid' });
  expect(r.metrics.map((m) => m.labels.decision)).toEqual(['failed']);
  expect(store.record()).toBeNull();
  expect(logs.at(-1)).toMatchObject({ decision: 'failed', severity: 'ERROR' });
});

test('a failed operation keeps the record (the change was accepted) and ends failed', async () => {
  const store = memoryStore();
  const port = compute(() => Promise.reject(new OperationFailedError('operation failed')));
  const { deps, job } = setup(store, port);
  const r = await actOnAutoscaler(deps, job);
  expect(r.outcome.decision).toBe('failed');
  expect(store.record()?.value).toEqual(leased);
});

test('busy: read again and plan again from the record before our write, then applied', async () => {
  const store = memoryStore();
  let calls = 0;
  const port = compute(() =>
    ++calls === 1
      ? Promise.reject(new ResourceBusyError('resourceNotReady'))
      : Promise.resolve({ operation: 'op-2', method: 'patch' }),
  );
  const { deps, job, logs, seen } = setup(store, port);
  const r = await actOnAutoscaler(deps, job);
  expect(r.outcome).toMatchObject({ decision: 'applied', attempts: 2 });
  // Both plans start from no record: our unapplied write is not its own cooldown.
  expect(seen).toEqual([null, null]);
  expect(logs.some((l) => l.decision === 'retry' && /busy/.test(String(l.message)))).toBe(true);
});

test('still busy at the last attempt: the record goes back and the transient error is thrown', async () => {
  const store = memoryStore();
  const port = compute(() => Promise.reject(new ResourceBusyError('resourceNotReady')));
  const { deps, job } = setup(store, port);
  await expect(actOnAutoscaler(deps, job)).rejects.toBeInstanceOf(ResourceBusyError);
  expect(port.applied).toBe(3);
  expect(store.record()).toBeNull();
});

test('a CAS lost at every attempt is a ConcurrentUpdateError, a transient one', async () => {
  const store = memoryStore();
  store.casFails = 10;
  const port = compute(() => Promise.reject(new Error('not called')));
  const { deps, job } = setup(store, port);
  const err = await actOnAutoscaler(deps, job).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConcurrentUpdateError);
  expect(err).toBeInstanceOf(TransientError);
  expect(port.applied).toBe(0);
});

test('a permanent read failure ends failed; an unclassified one is left to the caller', async () => {
  const store = memoryStore();
  const port = compute(() => Promise.reject(new Error('not called')));
  const { deps, job } = setup(store, {
    ...port,
    get: () => Promise.reject(new PermanentError('get: unexpected answer')),
  });
  await expect(actOnAutoscaler(deps, job)).resolves.toMatchObject({
    outcome: { decision: 'failed', reason: 'get: unexpected answer' },
  });
  const odd = setup(store, { ...port, get: () => Promise.reject(new Error('odd')) });
  await expect(actOnAutoscaler(odd.deps, odd.job)).rejects.toThrow('odd');
});

test('the lease sweep: nothing without a record; a missing autoscaler is skipped', async () => {
  const { deps, job } = setup(
    memoryStore(),
    compute(() => Promise.reject(new Error('not called'))),
  );
  expect(await actOnAutoscaler(deps, { ...job, recordedOnly: true })).toBeNull();
  const gone = setup(memoryStore(leased), {
    ...compute(() => Promise.reject(new Error('not called'))),
    get: () => Promise.resolve(null),
  });
  await expect(
    actOnAutoscaler(gone.deps, { ...gone.job, recordedOnly: true, missing: 'skipped' }),
  ).resolves.toMatchObject({ outcome: { decision: 'skipped', reason: 'not-found: no such autoscaler' } });
});
