/**
 * The sandbox's Consul ACLs, least privilege as in production: the management token only sets them
 * up (and is printed for the operator); instances get their role's tokens, functions their own.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { type ConsulCluster, repoRoot, toolPath } from '../launch';
import { type SandboxRole, sandboxRoles } from './topology';

/**
 * Runs the operator's packer/consul/files/acl-setup.sh against a cluster with the management token:
 * per role an agent token `<role>` and a read-only `<role>-default` token.
 */
export async function setupRoleTokens<R extends string = SandboxRole>(
  consul: ConsulCluster,
  roles: readonly R[] = sandboxRoles as unknown as readonly R[],
): Promise<Record<R | `${R}-default`, string>> {
  const { stdout } = await promisify(execFile)(
    'bash',
    [path.join(repoRoot(), 'packer/consul/files/acl-setup.sh')],
    {
      env: {
        ...envWithoutConsulToken(),
        PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
        CONSUL_HTTP_ADDR: consul.servers[0]!.httpAddr,
        CONSUL_HTTP_TOKEN: consul.token,
      },
    },
  );
  const schema = z.object(
    Object.fromEntries(roles.flatMap((r) => [r, `${r}-default`].map((k) => [k, z.guid()]))),
  );
  return schema.parse(JSON.parse(stdout)) as Record<R | `${R}-default`, string>;
}

// Policies already created per cluster: two functions may hold tokens of the same policy.
const created = new WeakMap<ConsulCluster, Map<string, Promise<unknown>>>();

/** A token holding only infra-scripts/acl/<policy>.hcl, as the deployed function gets. */
export async function functionToken(
  consul: ConsulCluster,
  policy: string,
  description: string,
): Promise<string> {
  const acl = consul.servers[0]!.consul.acl;
  const policies = created.get(consul) ?? new Map<string, Promise<unknown>>();
  created.set(consul, policies);
  let done = policies.get(policy);
  if (!done) {
    done = readFile(path.join(repoRoot(), 'infra-scripts/acl', `${policy}.hcl`), 'utf8').then((rules) =>
      acl.createPolicy(policy, rules),
    );
    policies.set(policy, done);
  }
  await done;
  return z.guid().parse(await acl.createToken({ description, policies: [policy] }));
}

/** This process's environment minus a Consul token the operator may have exported (the management one). */
export function envWithoutConsulToken(): NodeJS.ProcessEnv {
  const { CONSUL_HTTP_TOKEN: _token, CONSUL_HTTP_TOKEN_FILE: _file, ...env } = process.env;
  return env;
}
