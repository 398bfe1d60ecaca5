/**
 * Consul's view of the sandbox as the status page shows it, and the per-instance judgement the
 * sandbox's readiness wait makes from it, read through the Consul layer (which validates the answers).
 */
import { checkIds, nodeMetaKeys } from '../../../shared/contract';
import type { ConsulCluster } from '../launch';

export interface ViewNode {
  name: string;
  address: string;
  meta: Record<string, string>;
  checks: { id: string; service: string; status: string }[];
}

export interface ConsulView {
  leader: string;
  servers: { name: string; ip: string; running: boolean }[];
  nodes: ViewNode[];
}

/** Consul's view, read through any live server: nodes with their meta and checks, and the leader. */
export async function consulView(consul: ConsulCluster): Promise<ConsulView> {
  const servers = consul.servers.map((s) => ({
    name: s.options.nodeName,
    ip: s.ip,
    running: s.process.running,
  }));
  try {
    const [leader, nodes, checks] = await consul.read((c) =>
      Promise.all([c.status.leader(), c.catalog.nodes(), c.health.state('any')]),
    );
    return {
      leader,
      servers,
      nodes: nodes.map((n) => ({
        name: n.name,
        address: n.address,
        meta: n.meta,
        checks: checks
          .filter((c) => c.Node === n.name)
          .map((c) => ({ id: c.CheckID, service: c.ServiceName ?? '', status: c.Status })),
      })),
    };
  } catch {
    // No server answers: the page shows that rather than failing.
    return { leader: '', servers, nodes: [] };
  }
}

/**
 * Pure: how an instance stands in Consul. `healthy` needs the leader's serfHealth check (a live
 * member) and every check passing. `no-identity`: healthy, but the catalog entry lacks the agent's
 * node metadata (a join race, see consul-bootstrap.sh --confirm-node-meta). `stale`: the node of that
 * name carries another instance's id.
 */
export type NodeStanding = 'missing' | 'no-identity' | 'stale' | 'unhealthy' | 'healthy';

export function nodeStanding(nodes: ViewNode[], instance: { name: string; id: string }): NodeStanding {
  const node = nodes.find((n) => n.name === instance.name);
  if (!node) return 'missing';
  const id = node.meta[nodeMetaKeys.instanceId];
  if (id !== undefined && id !== instance.id) return 'stale';
  const serfHealth = node.checks.some((c) => c.id === checkIds.serfHealth);
  if (!serfHealth || node.checks.some((c) => c.status !== 'passing')) return 'unhealthy';
  return id === undefined ? 'no-identity' : 'healthy';
}
