/** Shared by the system-* tests: the tokens the operator's acl-setup.sh makes, and an instance's own. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

import type { Role } from '../../infra-scripts/local/instance';
import type { MetadataServer } from '../../infra-scripts/local/metadata-server';
import { setupRoleTokens } from '../../infra-scripts/local/scenarios/acl';
import { roles } from '../../shared/contract';
import type { ConsulCluster } from '../harness';

export type RoleTokens = { consul: string } & Record<`${Role}-default`, string>;

/**
 * The servers' agent token and every role's read-only default token, as acl-setup.sh makes them, with
 * the jwt auth method trusting `md`'s identity tokens for instances of `project`.
 */
export const roleTokens = (
  cluster: ConsulCluster,
  md: MetadataServer,
  project: string,
): Promise<RoleTokens> => setupRoleTokens(cluster, { metadata: md, project }, roles);

/** The agent token an instance holds after its login (its own node and its role's service). */
export async function agentTokenOf(instanceRoot: string): Promise<string> {
  const conf = JSON.parse(
    await readFile(path.join(instanceRoot, 'etc/consul.d/10-agent.json'), 'utf8'),
  ) as unknown;
  return z.object({ acl: z.object({ tokens: z.object({ agent: z.guid() }) }) }).parse(conf).acl.tokens.agent;
}

/** The metadata attributes an instance of `role` in a MIG boots with: join `cluster`, log in with its identity. */
export const bootAttributes = (
  cluster: ConsulCluster,
  tokens: RoleTokens,
  role: Role,
  where: { zone: string; projectNumber: string },
): Record<string, string> => ({
  'created-by': `projects/${where.projectNumber}/zones/${where.zone}/instanceGroupManagers/${role}-mig`,
  'consul-servers': cluster.joinAddrs.join(' '),
  'consul-gossip-key': cluster.gossipKey,
  'consul-default-token': tokens[`${role}-default`],
});
