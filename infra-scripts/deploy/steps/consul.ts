import type { Check, Command } from '../plan';
import { forceLeaveFunctions, type Kit, type Part } from './kit';
import { short } from './names';
import { identityAudience, metadataArg, vmArgs } from './vm';

/** Consul servers: fixed names and private addresses, no external IP. */
export function consulServerSteps(k: Kit): Part {
  const { c, n } = k;
  return {
    steps: k.serverIps.map((ip, i) => {
      const zone = c.zones[i % c.zones.length] as string;
      return k.resource(`consul-server-${i}`, `Consul server ${n.consulServer(i)} in ${zone}`, {
        group: ['compute', 'instances'],
        name: n.consulServer(i),
        scope: [`--zone=${zone}`],
        args: [
          `--zone=${zone}`,
          `--subnet=${n.subnet}`,
          `--private-network-ip=${ip}`,
          '--no-address',
          ...vmArgs(k, 'consul', c.consul.machineType, c.consul.imageFamily),
          metadataArg(k, 'consul', {
            'consul-bootstrap-expect': String(c.consul.servers),
            'consul-server-cert-secret': 'consul-server-cert',
            'consul-server-key-secret': 'consul-server-key',
            'consul-initial-management-token-secret': 'consul-initial-management-token',
          }),
        ],
      });
    }),
  };
}

/**
 * ACL policies and tokens: registered in Consul, on a server over IAP, with the token secrets the
 * deploy generated (the script reads them there; they never cross this machine). A label on the
 * management token's secret records which set is registered.
 */
export function consulAclSteps(k: Kit): Part {
  const { n, P } = k;
  const acl = aclScript(k);
  const aclHash = short(acl.script);
  const registered: Check = {
    args: [
      'secrets',
      'describe',
      'consul-initial-management-token',
      ...P,
      '--format=value(labels.acl_registered)',
    ],
    expect: { equals: aclHash },
  };
  return {
    steps: [
      k.step(
        'consul-acl',
        `Consul ACL policies and tokens (${acl.count} tokens, on ${n.consulServer(0)})`,
        registered,
        onServer(k, acl.script),
      ),
      k.step(
        'consul-acl-mark',
        'record the registered ACL set on the management token secret',
        registered,
        k.cmd(
          'secrets',
          'update',
          'consul-initial-management-token',
          `--update-labels=acl_registered=${aclHash}`,
        ),
      ),
    ],
  };
}

/** `gcloud compute ssh` to the first server over IAP, running `script` (on stdin) as root. */
export function onServer(k: Kit, script: string): Command {
  const { c, n, P } = k;
  return {
    args: [
      'compute',
      'ssh',
      n.consulServer(0),
      `--zone=${c.zones[0] as string}`,
      '--tunnel-through-iap',
      '--command=sudo bash -s',
      // No prompt for a new key's passphrase: the deploy runs unattended.
      '--quiet',
      ...P,
    ],
    stdin: { script, lines: script.split('\n').length },
  };
}

/**
 * The head of a script run on a server: the management token from Secret Manager (read there with
 * the server's account), once the cluster answers with ACLs.
 */
export function managementLines(project: string): string[] {
  return [
    'set -euo pipefail',
    'export CONSUL_HTTP_ADDR=127.0.0.1:8500',
    `project=${project}`,
    `md() { curl -fsS --max-time 5 -H 'Metadata-Flavor: Google' "http://metadata.google.internal/computeMetadata/v1/$1"; }`,
    'secret() {',
    '  local token',
    '  token=$(md instance/service-accounts/default/token | jq -r .access_token)',
    '  curl -fsS --max-time 10 -H "Authorization: Bearer $token" \\',
    '    "https://secretmanager.googleapis.com/v1/projects/$project/secrets/$1/versions/latest:access" |',
    '    jq -r .payload.data | base64 -d',
    '}',
    'CONSUL_HTTP_TOKEN=$(secret consul-initial-management-token)',
    'export CONSUL_HTTP_TOKEN',
    '# The cluster elects a leader and bootstraps ACLs a few minutes after the servers boot.',
    'for _ in $(seq 120); do consul acl token read -self >/dev/null 2>&1 && break; sleep 5; done',
  ];
}

/** The policies and tokens to register: the agents', each function's, the force-leave tokens. */
function aclEntries(k: Kit) {
  const { c, n, inputs } = k;
  return [
    ...Object.entries(inputs.agentPolicies)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([role, rules]) => ({
        policy: `ilb-${role}`,
        rules,
        token: n.agentToken(role),
        // acl-setup.sh finds tokens by this description: it can rotate them later.
        description: `ilb-${role} agent token`,
      })),
    ...c.functions.flatMap((f) => {
      const rules = inputs.functionPolicies[f];
      return rules === undefined
        ? []
        : [{ policy: n.fnPolicy(f), rules, token: n.fnToken(f), description: `fn ${f}` }];
    }),
    // One policy (the repository's force-leave.hcl), a token per function: either can be revoked alone.
    ...forceLeaveFunctions(c, inputs).map((f) => ({
      policy: 'fn-force-leave',
      rules: inputs.forceLeavePolicy as string,
      token: n.fnForceLeaveToken(f),
      description: `fn ${f} force-leave`,
    })),
  ];
}

/** The script run on a Consul server: policies from the repository's HCL, tokens from Secret Manager. */
function aclScript(k: Kit): { script: string; count: number } {
  const entries = aclEntries(k);
  const lines = [
    ...managementLines(k.c.project),
    'policy() {',
    '  if consul acl policy read -name "$1" >/dev/null 2>&1; then',
    '    consul acl policy update -name "$1" -rules "@$2" >/dev/null',
    '  else',
    '    consul acl policy create -name "$1" -description "$3" -rules "@$2" >/dev/null',
    '  fi',
    '}',
    'token() {',
    '  local t',
    '  t=$(secret "$1")',
    '  if ! CONSUL_HTTP_TOKEN=$t consul acl token read -self >/dev/null 2>&1; then',
    '    consul acl token create -secret "$t" -description "$3" -policy-name "$2" >/dev/null',
    '  fi',
    '}',
    'dir=$(mktemp -d)',
    `trap 'rm -rf "$dir"' EXIT`,
  ];
  const written = new Set<string>();
  for (const e of entries) {
    if (/^ILB_ACL_EOF$/m.test(e.rules))
      throw new Error(`policy ${e.policy}: rules contain the heredoc marker`);
    if (!written.has(e.policy)) {
      written.add(e.policy);
      lines.push(
        `cat >"$dir/${e.policy}.hcl" <<'ILB_ACL_EOF'`,
        e.rules.trimEnd(),
        'ILB_ACL_EOF',
        `policy ${e.policy} "$dir/${e.policy}.hcl" "${e.description}"`,
      );
    }
    lines.push(`token ${e.token} ${e.policy} "${e.description}"`);
  }
  lines.push(...identityLines(k.c.project));
  lines.push(`echo "ACL: ${written.size} policies and ${entries.length} tokens in place"`);
  return { script: `${lines.join('\n')}\n`, count: entries.length };
}

/** The role of each client tier and the service its VMs register (services.*.name in shared/contract). */
const clientServices = { backend: 'backend', haproxy: 'haproxy-internal', frontend: 'frontend' } as const;

/**
 * Client VMs hold no token of the deploy: they log in with their GCE identity token (Google's keys),
 * as packer/consul/files/acl-setup.sh sets up the sandbox. Claims by JSON pointer (Consul 1.15's
 * ClaimMappings); per role a node identity named as the instance and the role's service identity.
 */
function identityLines(project: string): string[] {
  const method = 'gce-instance-identity';
  const config = JSON.stringify({
    JWKSURL: 'https://www.googleapis.com/oauth2/v3/certs',
    BoundIssuer: 'https://accounts.google.com',
    BoundAudiences: [identityAudience(project)],
    JWTSupportedAlgs: ['RS256'],
    ClaimMappings: Object.fromEntries(
      ['instance_name', 'instance_id', 'project_id', 'zone'].map((c) => [`/google/compute_engine/${c}`, c]),
    ),
  });
  const lines = [
    // `update` takes no -type (and keeps it).
    `if consul acl auth-method read -name ${method} >/dev/null 2>&1; then verb=(update); else verb=(create -type jwt); fi`,
    `consul acl auth-method "\${verb[@]}" -name ${method} -max-token-ttl 1h -token-locality local \\`,
    `  -config '${config}' >/dev/null`,
    `for id in $(consul acl binding-rule list -method ${method} -format=json | jq -r '.[].ID'); do`,
    '  consul acl binding-rule delete -id "$id" >/dev/null',
    'done',
  ];
  for (const [role, service] of Object.entries(clientServices)) {
    const selector = `value.project_id == "${project}" and value.instance_name matches "^${role}-[a-z0-9-]+$"`;
    for (const [type, name] of [
      ['node', '${value.instance_name}'],
      ['service', service],
    ]) {
      lines.push(
        `consul acl binding-rule create -method ${method} -bind-type ${type} -bind-name '${name}' \\`,
        `  -selector '${selector}' >/dev/null`,
      );
    }
  }
  return lines;
}
