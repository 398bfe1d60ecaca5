import { z } from 'zod';
import type { InstancesApi } from '../compute/instances';
import { nodeMaintenanceCheckId, type ConsulApi } from '../consul/client';
import { readJson } from '../consul/kv-json';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../logging';
import { parsePubsubMessage, type EventTarget, type InstanceEvent } from './parse';
import {
  drainCheckId,
  mergeRecord,
  needsLookup,
  nodeMetaKeys,
  planTarget,
  resolveInstanceId,
  type InstanceRecord,
  type Maintenance,
  type Step,
  type TargetPlan,
} from './plan';

export interface InstanceEventsDeps {
  consul: ConsulApi;
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

export interface TargetOutcome {
  instance: string;
  instanceId?: string;
  decision: TargetPlan['decision'] | 'failed';
  reason: string;
}

export type MessageOutcome =
  | { status: 'rejected'; reason: string }
  | { status: 'duplicate'; eventId: string }
  | { status: 'planned' | 'applied'; eventId: string; targets: TargetOutcome[] };

/** A failure worth a redelivery (Consul/Compute unreachable, a node agent not back yet). */
export class RetryableError extends Error {
  override name = 'RetryableError';
}

const maintenanceSchema = z.object({
  mode: z.enum(['agent', 'catalog']),
  node: z.string(),
  reason: z.string(),
  eventAt: z.number(),
});
const recordSchema: z.ZodType<InstanceRecord> = z.object({
  drainAt: z.number().optional(),
  restoreAt: z.number().optional(),
  maintenance: maintenanceSchema.optional(),
});

interface StoredRecord {
  record: InstanceRecord | null;
  /** ModifyIndex of the record's key, 0 when absent (a CAS then creates it). */
  index: number;
}

const outcomeOf = (plan: TargetPlan): TargetOutcome => ({
  instance: plan.target.name,
  instanceId: plan.instanceId,
  decision: plan.decision,
  reason: plan.reason,
});

/** The node's own agent answers quickly or not at all: a dead instance must not stall the event. */
const agentCallOptions = { timeoutMs: 1500, retries: 0 };

export function createInstanceEventsHandler(deps: InstanceEventsDeps) {
  const { consul, logger } = deps;
  const recordKey = (instanceId: string) => `${deps.recordPrefix}${instanceId}`;

  const readRecord = async (instanceId: string): Promise<StoredRecord> => {
    const stored = await readJson(consul, recordKey(instanceId), recordSchema);
    return { record: stored?.value ?? null, index: stored?.index ?? 0 };
  };

  // Starts from the record read while observing; reads again only when a concurrent update won.
  const writeRecord = async (
    instanceId: string,
    seen: StoredRecord,
    mark: TargetPlan['mark'],
    maintenance: Maintenance | null | undefined,
  ) => {
    let { record, index } = seen;
    for (let attempt = 0; attempt < 5; attempt++) {
      const next = mergeRecord(record, mark, maintenance);
      if ((await consul.kvPut(recordKey(instanceId), JSON.stringify(next), index)) !== null) return;
      ({ record, index } = await readRecord(instanceId));
    }
    throw new RetryableError(`instance record ${instanceId}: too many concurrent updates`);
  };

  const observe = async (event: InstanceEvent, target: EventTarget) => {
    const node = await consul.catalogNode(target.name);
    const lookup = needsLookup(event, node)
      ? await deps.instances.get({ project: target.project, zone: target.zone, name: target.name })
      : undefined;
    const instanceId = resolveInstanceId(target, { node, lookup });
    const stored: StoredRecord = instanceId ? await readRecord(instanceId) : { record: null, index: 0 };
    return { observation: { node, lookup, record: stored.record }, stored };
  };

  // Drains through the node's own agent when it answers as that instance; otherwise through a
  // critical catalog check. Maintenance is agent-local state: a check registered through the
  // catalog is removed by a live agent's anti-entropy, but it holds while the agent is dead or
  // unreachable, which is when the agent path fails.
  const setMaintenance = async (
    step: Extract<Step, { type: 'set-maintenance' }>,
  ): Promise<Maintenance['mode']> => {
    try {
      const agent = consul.agentAt(step.address, deps.agentPort, agentCallOptions);
      const self = await agent.self();
      if (self.nodeName === step.node && self.meta[nodeMetaKeys.instanceId] === step.instanceId) {
        await agent.setNodeMaintenance(true, step.reason);
        return 'agent';
      }
    } catch (err) {
      logger.debug(
        { instance: step.node, err: (err as Error).message },
        'node agent unreachable, drain by catalog check',
      );
    }
    await consul.registerNodeCheck(step.node, step.address, {
      id: drainCheckId,
      name: 'Draining: instance going away (gce-ilb-orchestrator)',
      status: 'critical',
      notes: step.reason,
    });
    return 'catalog';
  };

  const clearMaintenance = async (step: Extract<Step, { type: 'clear-maintenance' }>) => {
    const m = step.maintenance;
    if (m.mode === 'catalog') {
      await consul.deregisterNodeCheck(step.node, drainCheckId);
      return;
    }
    const agent = consul.agentAt(step.address, deps.agentPort, agentCallOptions);
    try {
      const self = await agent.self();
      if (self.nodeName !== step.node || self.meta[nodeMetaKeys.instanceId] !== step.instanceId) {
        throw new RetryableError(`agent at ${step.address} is not ${step.node}/${step.instanceId} yet`);
      }
      const checks = await agent.checks();
      // Only our own maintenance: an operator's `consul maint` carries another reason.
      if (checks[nodeMaintenanceCheckId]?.notes === m.reason) await agent.setNodeMaintenance(false, '');
    } catch (err) {
      if (err instanceof RetryableError) throw err;
      throw new RetryableError(
        `agent of ${step.node} unreachable to lift maintenance: ${(err as Error).message}`,
      );
    }
  };

  /** Runs a plan's steps; returns the final decision (a lost CAS turns a deregistration into a skip). */
  const execute = async (plan: TargetPlan, stored: StoredRecord): Promise<TargetOutcome> => {
    const outcome = outcomeOf(plan);
    if (plan.decision === 'retry') throw new RetryableError(`${plan.target.name}: ${plan.reason}`);
    let maintenance: Maintenance | null | undefined;
    for (const step of plan.steps) {
      switch (step.type) {
        case 'set-maintenance': {
          const mode = await setMaintenance(step);
          maintenance = { mode, node: step.node, reason: step.reason, eventAt: plan.mark?.at ?? 0 };
          outcome.reason = `${plan.reason} (maintenance via ${mode})`;
          break;
        }
        case 'clear-maintenance':
          await clearMaintenance(step);
          maintenance = null;
          break;
        case 'forget-maintenance':
          maintenance = null;
          break;
        case 'deregister':
          if ((await consul.deleteNodeCas(step.node, step.modifyIndex)) === 'conflict') {
            // Re-registered between our read and the delete: the newer registration wins.
            return { ...outcome, decision: 'skip', reason: 'modified-concurrently' };
          }
          break;
        case 'force-leave':
          await consul.forceLeave(step.node);
          break;
        case 'forget-instance':
          // A lost CAS leaves a small stale record behind, harmless for an id never seen again.
          await consul.kvDelete(recordKey(step.instanceId), stored.index);
          break;
      }
    }
    if (plan.instanceId && plan.mark) await writeRecord(plan.instanceId, stored, plan.mark, maintenance);
    return outcome;
  };

  const processEvent = async (event: InstanceEvent, act: boolean) => {
    const outcomes: TargetOutcome[] = [];
    const failures: Error[] = [];
    // Targets are independent: one failing does not stop the others; the message is redelivered.
    for (const target of event.targets) {
      const started = performance.now();
      let outcome: TargetOutcome;
      try {
        const { observation, stored } = await observe(event, target);
        const plan = planTarget(event, target, observation);
        outcome = act ? await execute(plan, stored) : outcomeOf(plan);
        if (!act)
          logger.info({ instance: target.name, eventId: event.id, plan }, 'dry run: plan not applied');
      } catch (err) {
        failures.push(err as Error);
        outcome = {
          instance: target.name,
          instanceId: target.instanceId,
          decision: 'failed',
          reason: (err as Error).message,
        };
      }
      outcomes.push(outcome);
      const latency = Math.round((performance.now() - started) * 10) / 10;
      const fields = { ...outcome, eventId: event.id, method: event.method, action: event.action, latency };
      if (outcome.decision === 'failed')
        logger.warn(fields, `${event.action} ${target.name}: failed, will retry`);
      else logger.info(fields, `${event.action} ${target.name}: ${outcome.decision} (${outcome.reason})`);
    }
    // Also for a permanent failure (e.g. ACL denied): the message then ends in the dead-letter topic
    // instead of being dropped.
    if (failures.length > 0) throw new RetryableError(failures.map((f) => f.message).join('; '));
    return outcomes;
  };

  /** Handles one Pub/Sub message: resolves for anything to acknowledge, throws to have it redelivered. */
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
    if (deps.dryRun)
      return { status: 'planned', eventId: event.id, targets: await processEvent(event, false) };
    const run = await deps.ledger.run({ id: event.id, at: event.time }, () => processEvent(event, true));
    if (run.duplicate) {
      logger.info(
        { decision: 'duplicate', eventId: event.id },
        'instance event already handled: acknowledged',
      );
      return { status: 'duplicate', eventId: event.id };
    }
    return { status: 'applied', eventId: event.id, targets: run.result };
  };
}
