/**
 * The sandbox's Consul ACLs, least privilege as in production: the management token only sets them
 * up (and is printed for the operator); instances log in with their identity tokens (the metadata
 * server signs them, Consul's jwt auth method trusts its JWKS) and get their role's read-only default
 * token; functions get their own.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { type ConsulCluster, repoRoot, toolPath } from '../launch';
import type { MetadataServer } from '../metadata-server';
import { type SandboxRole, sandboxProject, sandboxRoles } from './topology';

export interface IdentitySetup {
  /** Whose identity tokens Consul trusts (its JWKS). */
  metadata: Pick<MetadataServer, 'identityJwksUrl'>;
  /** The project the binding rules require (default: the sandbox's). */
  project?: string;
  /** The audience bound (default: consul-bootstrap.sh's, https://consul.ilb.internal/<project>). */
  audience?: string;
}

/**
 * Runs the operator's packer/consul/files/acl-setup.sh against a cluster with the management token:
 * the servers' agent token `consul`, per role a read-only `<role>-default` token, and the jwt auth
 * method with its binding rules.
 */
export async function setupRoleTokens<R extends string = SandboxRole>(
  consul: ConsulCluster,
  identity: IdentitySetup,
  roles: readonly R[] = sandboxRoles as unknown as readonly R[],
): Promise<{ consul: string } & Record<`${R}-default`, string>> {
  const { stdout } = await promisify(execFile)(
    'bash',
    [path.join(repoRoot(), 'packer/consul/files/acl-setup.sh')],
    {
      env: {
        ...envWithoutConsulToken(),
        PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
        CONSUL_HTTP_ADDR: consul.servers[0]!.httpAddr,
        CONSUL_HTTP_TOKEN: consul.token,
        ILB_IDENTITY_PROJECT: identity.project ?? sandboxProject,
        ILB_IDENTITY_JWKS_URL: await identity.metadata.identityJwksUrl(),
        ...(identity.audience ? { ILB_IDENTITY_AUDIENCE: identity.audience } : {}),
      },
    },
  );
  const schema = z.object({
    consul: z.guid(),
    ...Object.fromEntries(roles.map((r) => [`${r}-default`, z.guid()])),
  });
  return schema.parse(JSON.parse(stdout)) as { consul: string } & Record<`${R}-default`, string>;
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
