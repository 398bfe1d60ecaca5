import type { InstancesApi } from '../compute/instances';
import type { ConsulClient } from '../consul/client';
import { classifyError, TransientError, type ClassifiedError } from '../errors';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../logging';
import { createDrainMechanism } from './drain';
import { parsePubsubMessage, type EventTarget, type InstanceEvent } from './parse';
import { needsLookup, planTarget, resolveInstanceId } from './plan';
import { createRecordStore, noRecord, type RecordStore } from './records';
import { createStepExecutor, outcomeOf, type TargetOutcome } from './steps';

export type { TargetOutcome } from './steps';

/** What instanceEvents reads and writes in Consul. */
export type InstanceEventsConsul = Pick<ConsulClient, 'at'> & {
  catalog: Pick<ConsulClient['catalog'], 'node' | 'register' | 'deregister' | 'deleteNodeCas'>;
  agent: Pick<ConsulClient['agent'], 'forceLeave'>;
  kv: Pick<ConsulClient['kv'], 'get' | 'cas' | 'delete'>;
};

export interface InstanceEventsDeps {
  consul: InstanceEventsConsul;
  instances: InstancesApi;
  ledger: Ledger;
  logger: Logger;
  /** KV prefix of the per-instance records, ending in `/`. */
  recordPrefix: string;
  agentPort: number;
  dryRun: boolean;
  /** When set, events about other projects are acknowledged and ignored. */
  project?: string;
}

export type MessageOutcome =
  | { status: 'rejected'; reason: string }
  | { status: 'duplicate'; eventId: string }
  /** A permanent failure (e.g. ACL denied): acknowledged, logged at ERROR, not retried. */
  | { status: 'failed'; eventId: string; reason: string }
  | { status: 'planned' | 'applied'; eventId: string; targets: TargetOutcome[] };

/** Reads what Consul (and, for a node without identity, Compute) says about one target now. */
async function observe(
  deps: Pick<InstanceEventsDeps, 'consul' | 'instances'>,
  records: RecordStore,
  event: InstanceEvent,
  target: EventTarget,
) {
  const node = await deps.consul.catalog.node(target.name);
  const lookup = needsLookup(event, node)
    ? await deps.instances.get({ project: target.project, zone: target.zone, name: target.name })
    : undefined;
  const instanceId = resolveInstanceId(target, { node, lookup });
  const stored = instanceId ? await records.read(instanceId) : noRecord;
  return { observation: { node, lookup, record: stored.record }, stored };
}

/**
 * Handles one Pub/Sub message: decode → ledger → plan → execute → log. Resolves for anything to
 * acknowledge, permanent failures included; throws a TransientError to have it redelivered.
 */
export function createInstanceEventsHandler(deps: InstanceEventsDeps) {
  const { consul, logger } = deps;
  const records = createRecordStore(consul.kv, deps.recordPrefix);
  const execute = createStepExecutor({
    consul,
    drain: createDrainMechanism(consul, deps.agentPort, logger),
    records,
  });

  const processEvent = async (event: InstanceEvent, act: boolean) => {
    const outcomes: TargetOutcome[] = [];
    const failures: ClassifiedError[] = [];
    // Targets are independent: one failing does not stop the others.
    for (const target of event.targets) {
      const started = performance.now();
      let outcome: TargetOutcome;
      let failure: ClassifiedError | undefined;
      try {
        const { observation, stored } = await observe(deps, records, event, target);
        const plan = planTarget(event, target, observation);
        outcome = act ? await execute(plan, stored) : outcomeOf(plan);
        if (!act)
          logger.info({ instance: target.name, eventId: event.id, plan }, 'dry run: plan not applied');
      } catch (err) {
        failure = classifyError(err);
        failures.push(failure);
        outcome = {
          instance: target.name,
          instanceId: target.instanceId,
          decision: 'failed',
          reason: failure.message,
        };
      }
      outcomes.push(outcome);
      const latency = Math.round((performance.now() - started) * 10) / 10;
      const fields = { ...outcome, eventId: event.id, method: event.method, action: event.action, latency };
      if (failure?.transient) logger.warn(fields, `${event.action} ${target.name}: failed, will retry`);
      else if (failure)
        logger.error(fields, `${event.action} ${target.name}: failed permanently, not retried`);
      else logger.info(fields, `${event.action} ${target.name}: ${outcome.decision} (${outcome.reason})`);
    }
    // One transient failure is worth a redelivery of the whole message; the ledger frees its id.
    const transient = failures.filter((f) => f.transient);
    if (transient.length > 0)
      throw new TransientError(transient.map((f) => f.message).join('; '), { cause: transient[0] });
    return outcomes;
  };

  const run = async (event: InstanceEvent): Promise<MessageOutcome> => {
    if (deps.dryRun)
      return { status: 'planned', eventId: event.id, targets: await processEvent(event, false) };
    const ledgered = await deps.ledger.run({ id: event.id, at: event.time }, () => processEvent(event, true));
    if (ledgered.duplicate) {
      logger.info(
        { decision: 'duplicate', eventId: event.id },
        'instance event already handled: acknowledged',
      );
      return { status: 'duplicate', eventId: event.id };
    }
    return { status: 'applied', eventId: event.id, targets: ledgered.result };
  };

  return async function handle(data: unknown): Promise<MessageOutcome> {
    const parsed = parsePubsubMessage(data);
    if (!parsed.ok) {
      logger.warn(
        {
          decision: 'ignored',
          reason: parsed.reason,
          outcome: parsed.outcome,
          insertId: parsed.insertId,
          method: parsed.method,
        },
        `instance event ${parsed.outcome}: acknowledged without action`,
      );
      return { status: 'rejected', reason: parsed.reason };
    }
    const event = parsed.event;
    const foreign = event.targets.find((t) => deps.project !== undefined && t.project !== deps.project);
    if (foreign) {
      const reason = `project ${foreign.project} is not ${deps.project}`;
      logger.warn(
        { decision: 'ignored', reason, eventId: event.id },
        'instance event irrelevant: acknowledged',
      );
      return { status: 'rejected', reason };
    }
    try {
      return await run(event);
    } catch (err) {
      // The one place that decides between a redelivery and an acknowledgement.
      const failure = classifyError(err);
      if (failure.transient) throw failure;
      logger.error(
        { decision: 'dropped', reason: failure.message, eventId: event.id, status: failure.status },
        'instance event failed permanently: acknowledged without retry',
      );
      return { status: 'failed', eventId: event.id, reason: failure.message };
    }
  };
}
