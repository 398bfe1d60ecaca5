import { parse } from './answers';
import { bodyText, isResponseError, type Connection } from './package';
import { agentChecksSchema, agentSelfSchema, membersSchema } from './schemas';
import type { ConsulClient, ConsulClientSettings } from './types';

export function agentApi(
  { consul, run, raw }: Connection,
  settings: ConsulClientSettings,
): ConsulClient['agent'] {
  return {
    self: () =>
      run('agent self', async (pass) => {
        const self = parse(agentSelfSchema, await consul.agent.self(pass), 'agent/self');
        return {
          nodeName: self.Config.NodeName,
          nodeId: self.Config.NodeID ?? '',
          datacenter: self.Config.Datacenter ?? '',
          meta: self.Meta ?? {},
          debugConfig: self.DebugConfig ?? {},
        };
      }),
    members: () =>
      run('agent members', async (pass) =>
        parse(membersSchema, (await consul.agent.members(pass)) ?? [], 'agent/members').map((m) => ({
          name: m.Name,
          address: m.Addr,
          status: m.Status,
          tags: m.Tags ?? {},
        })),
      ),
    checks: () =>
      run('agent checks', async (pass) => {
        const checks = parse(agentChecksSchema, (await consul.agent.checks(pass)) ?? {}, 'agent/checks');
        return Object.fromEntries(
          Object.entries(checks).map(([id, c]) => [
            id,
            { id: c.CheckID, status: c.Status ?? '', notes: c.Notes ?? '' },
          ]),
        );
      }),
    maintenance: (enable, reason) =>
      run('agent maintenance', async (pass) => {
        await consul.agent.maintenance({ enable, ...(enable && reason ? { reason } : {}), ...pass });
      }),
    serviceMaintenance: (serviceId, enable, reason) =>
      run(`agent service maintenance ${serviceId}`, async (pass) => {
        await consul.agent.service.maintenance({
          id: serviceId,
          enable,
          ...(enable && reason ? { reason } : {}),
          ...pass,
        });
      }),
    registerService: (d) =>
      run(`agent service register ${d.name}`, async (pass) => {
        await consul.agent.service.register({
          name: d.name,
          ...(d.id ? { id: d.id } : {}),
          ...(d.port === undefined ? {} : { port: d.port }),
          ...(d.address ? { address: d.address } : {}),
          ...(d.tags ? { tags: d.tags } : {}),
          ...(d.meta ? { meta: d.meta } : {}),
          ...pass,
        });
      }),
    // Not in the package: its agent.forceLeave drops `prune`, without which the leader registers
    // a failed gossip member again. Consul answers once the leave intent was gossiped, up to
    // serf's 5 s broadcast timeout, hence the longer timeout.
    forceLeave: (name) =>
      run(
        `agent force-leave ${name}`,
        async (pass) => {
          try {
            await raw(
              '_put',
              {
                name: 'agent.forceLeave',
                path: '/agent/force-leave/{node}',
                params: { node: name },
                query: { prune: 1 },
              },
              pass,
            );
            return 'left';
          } catch (err) {
            // Consul answers 500 "agent: No node found with name '...'" for a node no longer in the pool.
            if (isResponseError(err) && /no node found/i.test(bodyText(err.response.body)))
              return 'not-a-member';
            throw err;
          }
        },
        { timeoutMs: Math.max(settings.timeoutMs, 8000) },
      ),
  };
}
