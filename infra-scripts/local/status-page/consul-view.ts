/**
 * Consul's view of the sandbox as the status page shows it, and the per-instance judgement the
 * sandbox's readiness wait makes from it. Answers from Consul are parsed, never trusted as typed.
 */
import { z } from 'zod';
import type { ConsulCluster } from '../launch';

const catalogNodesSchema = z.array(
  z.object({
    Node: z.string(),
    Address: z.string(),
    Meta: z.record(z.string(), z.string()).nullish(),
  }),
);
const healthChecksSchema = z.array(
  z.object({ Node: z.string(), CheckID: z.string(), ServiceName: z.string(), Status: z.string() }),
);

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
  for (const server of consul.servers.filter((s) => s.process.running)) {
    try {
      const get = async <T>(p: string, schema: z.ZodType<T>): Promise<T> => {
        const res = await server.request('GET', p);
        if (!res.ok) throw new Error(`${p}: ${res.status}`);
        return schema.parse(await res.json());
      };
      const [leader, nodes, checks] = await Promise.all([
        get('/v1/status/leader', z.string()),
        get('/v1/catalog/nodes', catalogNodesSchema),
        get('/v1/health/state/any', healthChecksSchema),
      ]);
      return {
        leader,
        servers,
        nodes: nodes.map((n) => ({
          name: n.Node,
          address: n.Address,
          meta: n.Meta ?? {},
          checks: checks
            .filter((c) => c.Node === n.Node)
            .map((c) => ({ id: c.CheckID, service: c.ServiceName, status: c.Status })),
        })),
      };
    } catch {
      continue;
    }
  }
  return { leader: '', servers, nodes: [] };
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
  const id = node.meta['gce-instance-id'];
  if (id !== undefined && id !== instance.id) return 'stale';
  const serfHealth = node.checks.some((c) => c.id === 'serfHealth');
  if (!serfHealth || node.checks.some((c) => c.status !== 'passing')) return 'unhealthy';
  return id === undefined ? 'no-identity' : 'healthy';
}
