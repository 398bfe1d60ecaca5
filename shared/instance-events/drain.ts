import type { ConsulClient } from '../consul/client';
import { checkIds, nodeMetaKeys } from '../contract';
import { TransientError } from '../errors';
import type { Logger } from '../logging';
import type { Maintenance, Step } from './plan';

export type SetMaintenanceStep = Extract<Step, { type: 'set-maintenance' }>;
export type ClearMaintenanceStep = Extract<Step, { type: 'clear-maintenance' }>;

export interface DrainMechanism {
  /** Puts the node in maintenance; returns how. */
  set(step: SetMaintenanceStep): Promise<Maintenance['mode']>;
  /** Lifts the maintenance this function set (and only that one). */
  clear(step: ClearMaintenanceStep): Promise<void>;
}

/** The node's own agent answers quickly or not at all: a dead instance must not stall the event. */
const agentCallOptions = { timeoutMs: 1500, retries: 0 };

/**
 * Drains through the node's own agent when it answers as that instance; otherwise through a
 * critical catalog check. Maintenance is agent-local state: a check registered through the
 * catalog is removed by a live agent's anti-entropy, but it holds while the agent is dead or
 * unreachable, which is when the agent path fails.
 */
export function createDrainMechanism(
  consul: Pick<ConsulClient, 'at'> & { catalog: Pick<ConsulClient['catalog'], 'register' | 'deregister'> },
  agentPort: number,
  logger: Logger,
): DrainMechanism {
  const agentOf = (address: string) => consul.at({ host: address, port: agentPort, ...agentCallOptions });
  const isInstance = (
    self: { nodeName: string; meta: Record<string, string> },
    node: string,
    instanceId: string,
  ) => self.nodeName === node && self.meta[nodeMetaKeys.instanceId] === instanceId;

  return {
    async set(step) {
      const agent = agentOf(step.address);
      try {
        if (isInstance(await agent.agent.self(), step.node, step.instanceId)) {
          await agent.agent.maintenance(true, step.reason);
          return 'agent';
        }
      } catch (err) {
        logger.debug(
          { instance: step.node, err: (err as Error).message },
          'node agent unreachable, drain by catalog check',
        );
      }
      await consul.catalog.register({
        node: step.node,
        address: step.address,
        skipNodeUpdate: true,
        check: {
          checkId: checkIds.drain,
          name: 'Draining: instance going away (gce-ilb-orchestrator)',
          status: 'critical',
          notes: step.reason,
        },
      });
      return 'catalog';
    },

    async clear(step) {
      const m = step.maintenance;
      if (m.mode === 'catalog') {
        await consul.catalog.deregister({ node: step.node, checkId: checkIds.drain });
        return;
      }
      const agent = agentOf(step.address);
      // Whatever the agent answers (down, refusing, denied), the restore waits for it: redelivery.
      const reach = <T>(call: Promise<T>) =>
        call.catch((err: unknown) => {
          throw new TransientError(
            `agent of ${step.node} unreachable to lift maintenance: ${(err as Error).message}`,
            { cause: err },
          );
        });
      if (!isInstance(await reach(agent.agent.self()), step.node, step.instanceId)) {
        throw new TransientError(`agent at ${step.address} is not ${step.node}/${step.instanceId} yet`);
      }
      const checks = await reach(agent.agent.checks());
      // Only our own maintenance: an operator's `consul maint` carries another reason.
      if (checks[checkIds.nodeMaintenance]?.notes === m.reason) await reach(agent.agent.maintenance(false));
    },
  };
}
