import type { Kit } from './kit';
import type { Role } from './names';

/** The audience of the identity tokens client VMs log in to Consul with (consul-bootstrap.sh's default). */
export const identityAudience = (project: string): string => `https://consul.ilb.internal/${project}`;

/**
 * Instance metadata: the images' contract (packer/README.md); secrets by Secret Manager name. Only
 * the servers get an agent token; client VMs log in with their identity token for the audience.
 */
export function metadataArg(k: Kit, role: Role, extra: Record<string, string> = {}): string {
  const { c, n } = k;
  return `--metadata=${Object.entries({
    'consul-servers': k.serverIps.join(' '),
    'consul-datacenter': c.consul.datacenter,
    'consul-gossip-key-secret': 'consul-gossip-key',
    ...(role === 'consul'
      ? { 'consul-agent-token-secret': n.agentToken(role) }
      : { 'consul-auth-audience': identityAudience(c.project) }),
    'consul-default-token-secret': n.agentToken(`${role}-default`),
    'consul-ca-cert-secret': 'consul-ca-cert',
    // HAProxy routes only to members inside the backends' subnet (haproxy-sync's gate).
    ...(role === 'haproxy' ? { 'ilb-backend-cidrs': c.network.cidr } : {}),
    // The frontend uses only HAProxy addresses that are members inside this subnet (its DNS path).
    ...(role === 'frontend' ? { 'ilb-haproxy-cidrs': c.network.cidr } : {}),
    ...extra,
  })
    .map(([key, v]) => `${key}=${v}`)
    .join(',')}`;
}

/** What every VM of a role runs as and on: image, account, shielded boot, labels. */
export function vmArgs(k: Kit, role: Role, machineType: string, family: string | undefined): string[] {
  return [
    `--machine-type=${machineType}`,
    `--image-family=${family ?? `ilb-${role}`}`,
    `--image-project=${k.c.imageProject}`,
    `--service-account=${k.n.roleSa(role)}`,
    '--scopes=cloud-platform',
    '--shielded-secure-boot',
    '--shielded-vtpm',
    '--shielded-integrity-monitoring',
    `--labels=${k.labels},role=${role}`,
  ];
}
