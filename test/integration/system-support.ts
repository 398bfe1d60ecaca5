/** Shared by the system-* tests: the per-role tokens the operator's acl-setup.sh makes. */
import type { Role } from '../../infra-scripts/local/instance';
import { setupRoleTokens } from '../../infra-scripts/local/scenarios/acl';
import { roles } from '../../shared/contract';
import type { ConsulCluster } from '../harness';

export type RoleTokens = Record<Role | `${Role}-default`, string>;

/** Every role's agent and default token, as packer/consul/files/acl-setup.sh makes them. */
export const roleTokens = (cluster: ConsulCluster): Promise<RoleTokens> => setupRoleTokens(cluster, roles);

/** The metadata attributes an instance of `role` in a MIG boots with: join `cluster` with its role's tokens. */
export const bootAttributes = (
  cluster: ConsulCluster,
  tokens: RoleTokens,
  role: Role,
  where: { zone: string; projectNumber: string },
): Record<string, string> => ({
  'created-by': `projects/${where.projectNumber}/zones/${where.zone}/instanceGroupManagers/${role}-mig`,
  'consul-servers': cluster.joinAddrs.join(' '),
  'consul-gossip-key': cluster.gossipKey,
  'consul-agent-token': tokens[role],
  'consul-default-token': tokens[`${role}-default`],
});
