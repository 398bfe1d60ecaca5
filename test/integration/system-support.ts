/** Shared by the system-* tests: the per-role tokens the operator's acl-setup.sh makes. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

import type { Role } from '../../infra-scripts/local/instance';
import { toolPath, type ConsulCluster } from '../harness';

const run = promisify(execFile);

export type RoleTokens = Record<Role | `${Role}-default`, string>;

/** Runs packer/consul/files/acl-setup.sh against the cluster; each role's agent and default token. */
export async function roleTokens(cluster: ConsulCluster): Promise<RoleTokens> {
  const { stdout } = await run('bash', ['packer/consul/files/acl-setup.sh'], {
    env: {
      ...process.env,
      PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
      CONSUL_HTTP_ADDR: cluster.servers[0]!.httpAddr,
      CONSUL_HTTP_TOKEN: cluster.token,
    },
  });
  const names = ['consul', 'backend', 'frontend', 'haproxy'] as const;
  return z
    .object(
      Object.fromEntries(
        names.flatMap((r) => [
          [r, z.guid()],
          [`${r}-default`, z.guid()],
        ]),
      ),
    )
    .parse(JSON.parse(stdout)) as RoleTokens;
}
