import type { InstancesApi } from '../gcp/instances';
import { customMetric, type MetricsWriter } from '../gcp/monitoring';
import type { ZoneOperationsApi } from '../gcp/operations';
import type { ConsulClient } from '../consul/client';
import type { CatalogNode } from '../consul/schemas';
import { nodeMetaKeys } from '../contract';
import { classifyError, TransientError, type ClassifiedError } from '../errors';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../logging';
import { computeNamePattern, createMembership, noRecord, type RecordStore } from '../membership';
import { parsePubsubMessage, type EventTarget, type InstanceEvent } from './parse';
import {
  isManagedNode,
  metaInstanceId,
  needsConfirmation,
  needsLookup,
  planTarget,
  refuseForgedOperation,
  resolveInstanceId,
  type Gossip,
} from './plan';
import { createStepExecutor, outcomeOf, type TargetOutcome } from './steps';

export type { TargetOutcome } from './steps';

/** What instanceEvents reads and writes in Consul, all through its one configured address. */
export type InstanceEventsConsul = {
  catalog: Pick<ConsulClient['catalog'], 'node' | 'nodes' | 'deleteNodeCas'>;
  health: Pick<ConsulClient['health'], 'node'>;
  kv: Pick<ConsulClient['kv'], 'get' | 'set' | 'cas' | 'delete'>;
};

export interface InstanceEventsDeps {
  consul: InstanceEventsConsul;
  instances: InstancesApi;
  operations: ZoneOperationsApi;
  ledger: Ledger;
  logger: Logger;
  /** KV prefix of the per-instance records, ending in `/`. */
  recordPrefix: string;
  /** KV prefix of the drain list the HAProxy tier reads, ending in `/`. */
  drainPrefix: string;
  /** Force-leave through a separately held operator token; null: never force-leave. */
  forceLeave: ((node: string) => Promise<unknown>) | null;
  /** Where `events_refused{reason}` goes (written to `project`); none: not written. */
  metrics?: MetricsWriter;
  dryRun: boolean;
  /** When set, events about other projects are acknowledged and ignored. */
  project?: string;
  /** Oldest event accepted, as an age in ms: the ledger's retention (older ids may be forgotten). */
  maxEventAgeMs: number;
  now?: () => number;
}

/** Clock skew tolerated for entries stamped in the future. */
export const maxEventSkewMs = 5 * 60_000;
/** Longest reason kept in an outcome (errors quote Consul's answers). */
const maxReasonChars = 300;

/** What became of one message, in the decision vocabulary (shared/outcome.ts). */
export type MessageOutcome =
  /** Malformed, or outside the accepted time window. */
  | { status: 'rejected'; reason: string }
  /** Not for this function: another project, or an entry that changes no membership. */
  | { status: 'ignored'; reason: string }
  | { status: 'duplicate'; eventId: string }
  /** A permanent failure (e.g. ACL denied): acknowledged, logged at ERROR, not retried. */
  | { status: 'failed'; eventId: string; reason: string }
  | { status: 'planned' | 'applied'; eventId: string; targets: TargetOutcome[] };

/** The node of an instance named by its numeric id: found by its identity metadata, in the zone. */
async function nodeById(consul: InstanceEventsConsul, target: EventTarget): Promise<CatalogNode | null> {
  const nodes = await consul.catalog.nodes({ nodeMeta: { [nodeMetaKeys.instanceId]: target.name } });
  return (
    nodes.find(
      (n) =>
        computeNamePattern.test(n.name) &&
        metaInstanceId(n) === target.name &&
        (n.meta[nodeMetaKeys.zone] ?? target.zone) === target.zone,
    ) ?? null
  );
}

/** Whether the node's agent still gossips, by the leader's serfHealth check on it. */
async function gossipOf(consul: InstanceEventsConsul, node: string): Promise<Gossip> {
  const checks = await consul.health.node(node);
  const serf = checks.find((c) => c.CheckID === 'serfHealth' && c.Node === node);
  if (!serf) return 'unknown';
  return serf.Status === 'passing' ? 'alive' : 'absent';
}

/** Reads what Consul and Compute say about one target now. */
async function observe(
  deps: Pick<InstanceEventsDeps, 'consul' | 'instances' | 'operations'>,
  records: RecordStore,
  event: InstanceEvent,
  requested: EventTarget,
) {
  const byId = requested.byId ? await nodeById(deps.consul, requested) : undefined;
  // Named by id: once its node is found, the node's (validated) name is the target's name.
  const target = byId
    ? { ...requested, name: byId.name, byId: false, instanceId: requested.name }
    : requested;
  const node = byId !== undefined ? byId : await deps.consul.catalog.node(target.name);
  // Consul servers and other unmanaged nodes: nothing more is read, the plan leaves them alone.
  if (node ? !isManagedNode(node.name, node.meta) : !target.byId && !isManagedNode(target.name))
    return { target, observation: { node, record: null }, stored: noRecord };
  const ref = { project: target.project, zone: target.zone };
  const lookup = needsLookup(event, node)
    ? await deps.instances.get({ ...ref, name: target.name })
    : undefined;
  const instanceId = resolveInstanceId(target, { node, lookup });
  const stored = instanceId ? await records.read(instanceId) : noRecord;
  const gossip = event.confirm === 'gone' && node ? await gossipOf(deps.consul, node.name) : undefined;
  // A drain's own operation confirms it at once (the instance may still run while it is deleted).
  const operation =
    event.action === 'drain' && node && instanceId && event.operationId
      ? await deps.operations.get({ ...ref, name: event.operationId })
      : undefined;
  // By name (or by id when the name is unknown: Compute accepts either); the plan compares the id
  // it answers with, so a same-name successor reads as this instance being gone.
  const confirm =
    instanceId && needsConfirmation(event, { node, record: stored.record, operation }, instanceId);
  const current = confirm ? (lookup ?? (await deps.instances.get({ ...ref, name: target.name }))) : undefined;
  return { target, observation: { node, lookup, current, operation, gossip, record: stored.record }, stored };
}

/**
 * Runs the work of one key at a time in this process, in arrival order. Entries about the same
 * instance arrive together (a delete's `first` and `last`, the group's repair): interleaved, the
 * `last` could deregister before the `first`'s drain lands and leave a drain key behind.
 */
function keyedQueue() {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const run = (tails.get(key) ?? Promise.resolve()).then(work);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

const clip = (text: string) => (text.length > maxReasonChars ? `${text.slice(0, maxReasonChars)}…` : text);

/**
 * Plans (and, when `act`, applies) one event for each instance it names. Targets are independent:
 * one failing does not stop the others; any transient failure is thrown after all ran, so the whole
 * message is redelivered (the ledger frees its id).
 */
function createEventProcessor(deps: InstanceEventsDeps) {
  const { logger } = deps;
  const membership = createMembership({
    consul: deps.consul,
    recordPrefix: deps.recordPrefix,
    drainPrefix: deps.drainPrefix,
    forceLeave: deps.forceLeave,
    logger,
  });
  const { records } = membership;
  const execute = createStepExecutor(membership);
  const oneAtATime = keyedQueue();

  return async (event: InstanceEvent, act: boolean): Promise<TargetOutcome[]> => {
    const outcomes: TargetOutcome[] = [];
    const failures: ClassifiedError[] = [];
    for (const requested of event.targets) {
      const started = performance.now();
      let target = requested;
      let outcome: TargetOutcome;
      let failure: ClassifiedError | undefined;
      try {
        const done = await oneAtATime(`${requested.zone}/${requested.name}`, async () => {
          const forged = refuseForgedOperation(event, requested);
          if (forged) return { plan: forged, outcome: outcomeOf(forged, false) };
          const seen = await observe(deps, records, event, requested);
          const plan = planTarget(event, seen.target, seen.observation);
          return { plan, outcome: act ? await execute(plan, seen.stored) : outcomeOf(plan, false) };
        });
        target = done.plan.target;
        outcome = done.outcome;
        if (!act)
          logger.info(
            { instance: target.name, decision: 'planned', eventId: event.id, plan: done.plan },
            'dry run: plan not applied',
          );
      } catch (err) {
        failure = classifyError(err);
        failures.push(failure);
        outcome = {
          instance: target.name,
          instanceId: target.instanceId,
          decision: failure.transient ? 'retry' : 'failed',
          reason: clip(failure.message),
        };
      }
      outcomes.push(outcome);
      const latency = Math.round((performance.now() - started) * 10) / 10;
      // `event` is what the entry meant (drain, remove, restore); `action` what was planned or done.
      const fields = { ...outcome, eventId: event.id, method: event.method, event: event.action, latency };
      const what = `${event.action} ${target.name}`;
      if (failure?.transient) logger.warn(fields, `${what}: failed, will retry`);
      else if (failure) logger.error(fields, `${what}: failed permanently, not retried`);
      else logger.info(fields, `${what}: ${outcome.decision} (${outcome.reason})`);
    }
    const transient = failures.filter((f) => f.transient);
    if (transient.length > 0)
      throw new TransientError(clip(transient.map((f) => f.message).join('; ')), { cause: transient[0] });
    return outcomes;
  };
}

/** `events_refused{reason}`: one message's refusals by reason. Best effort: a failure is logged. */
async function countRefusals(
  deps: Pick<InstanceEventsDeps, 'metrics' | 'project' | 'logger'>,
  targets: TargetOutcome[],
  at: number,
): Promise<void> {
  const byReason = new Map<string, number>();
  for (const t of targets)
    if (t.decision === 'refused') byReason.set(t.reason, (byReason.get(t.reason) ?? 0) + 1);
  if (byReason.size === 0 || !deps.metrics || deps.project === undefined) return;
  const type = customMetric('events_refused');
  const points = [...byReason].map(([reason, value]) => ({ type, labels: { reason }, value }));
  try {
    await deps.metrics.write(deps.project, points, at);
  } catch (err) {
    deps.logger.warn({ err: classifyError(err).message }, 'events_refused not written');
  }
}

/**
 * Handles one Pub/Sub message: decode → ledger → plan → execute → log. Resolves for anything to
 * acknowledge, permanent failures included; throws a TransientError to have it redelivered.
 */
export function createInstanceEventsHandler(deps: InstanceEventsDeps) {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  const processEvent = createEventProcessor(deps);

  const run = async (event: InstanceEvent): Promise<MessageOutcome> => {
    if (deps.dryRun)
      return { status: 'planned', eventId: event.id, targets: await processEvent(event, false) };
    let targets: TargetOutcome[] = [];
    // The ledger keeps a count per decision, not every outcome: its value stays small for any entry.
    const ledgered = await deps.ledger.run({ id: event.id, at: event.time }, async () => {
      targets = await processEvent(event, true);
      const decisions: Record<string, number> = {};
      for (const t of targets) decisions[t.decision] = (decisions[t.decision] ?? 0) + 1;
      return { targets: targets.length, decisions };
    });
    await countRefusals(deps, targets, now());
    if (ledgered.duplicate) {
      logger.info(
        { decision: 'duplicate', eventId: event.id },
        'instance event already handled: acknowledged',
      );
      return { status: 'duplicate', eventId: event.id };
    }
    return { status: 'applied', eventId: event.id, targets };
  };

  return async function handle(data: unknown): Promise<MessageOutcome> {
    const parsed = parsePubsubMessage(data);
    if (!parsed.ok) {
      // Reasons quote the entry's own values (a zone, a log name, a method): clipped, so an input
      // cannot inflate the logs.
      const reason = clip(parsed.reason);
      const decision = parsed.outcome === 'malformed' ? 'rejected' : 'ignored';
      logger.warn(
        {
          decision,
          reason,
          outcome: parsed.outcome,
          insertId: parsed.insertId,
          method: parsed.method === undefined ? undefined : clip(parsed.method),
        },
        `instance event ${parsed.outcome}: acknowledged without action`,
      );
      return { status: decision, reason };
    }
    const event = parsed.event;
    const age = now() - event.time;
    if (age > deps.maxEventAgeMs || age < -maxEventSkewMs) {
      // Older than the ledger remembers, or from the future (it would supersede every later event).
      const reason = `timestamp ${new Date(event.time).toISOString()} is outside the accepted window`;
      logger.warn(
        { decision: 'rejected', reason, eventId: event.id },
        'instance event out of time: acknowledged',
      );
      return { status: 'rejected', reason };
    }
    const foreign = event.targets.find((t) => deps.project !== undefined && t.project !== deps.project);
    if (foreign) {
      const reason = `project ${foreign.project} is not ${deps.project}`;
      logger.warn(
        { decision: 'ignored', reason, eventId: event.id },
        'instance event irrelevant: acknowledged',
      );
      return { status: 'ignored', reason };
    }
    try {
      return await run(event);
    } catch (err) {
      // The one place that decides between a redelivery and an acknowledgement.
      const failure = classifyError(err);
      if (failure.transient) throw failure;
      logger.error(
        { decision: 'failed', reason: clip(failure.message), eventId: event.id, status: failure.status },
        'instance event failed permanently: acknowledged without retry',
      );
      return { status: 'failed', eventId: event.id, reason: clip(failure.message) };
    }
  };
}
