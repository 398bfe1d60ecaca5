import { createHash } from 'node:crypto';
import { healthSweepDocument, type FunctionName, type ResolvedConfig } from './config';

/**
 * The pure core of the deploy: configuration in, an ordered list of `gcloud` steps out. Each step
 * has a check that the runner evaluates first (describe / list / get-iam-policy), so a second run
 * finds everything and changes nothing, and a run after a failure resumes where it stopped.
 *
 * Arguments may name a lookup as `@{name}`: a value only Google knows once earlier steps ran (the
 * project number, a sink's writer identity, the subscription Eventarc made for a function). The
 * runner resolves it with the lookup's own read-only `gcloud` command when a step needs it.
 */

export type Expect =
  | 'exists'
  | 'nonEmpty'
  | { equals: string }
  | { contains: string }
  /** The JSON IAM policy printed by `get-iam-policy --format=json` holds this binding. */
  | { binding: { role: string; member: string } };

export interface Check {
  args: string[];
  expect: Expect;
}

/** What a command reads on stdin: generated secret material (never printed) or a script. */
export type Stdin =
  | { secret: 'gossip-key' | 'uuid' | 'ca-cert' | 'ca-key' | 'server-cert' | 'server-key' }
  | { script: string; lines: number };

export interface Command {
  args: string[];
  stdin?: Stdin;
}

export interface Step {
  id: string;
  title: string;
  /** Deploy: run when the check fails. Teardown: run when it passes (the resource is ours). */
  runWhen: 'check-fails' | 'check-passes';
  check: Check;
  run: Command[];
  /** Secret-generating steps share one generated TLS bundle across their commands. */
  tls?: { dnsNames: string[]; ips: string[] };
}

export interface Plan {
  steps: Step[];
  /** `@{name}` → the read-only command printing its value. */
  lookups: Record<string, string[]>;
}

/** What the CLI reads from the repository for the plan (the plan itself reads nothing). */
export interface PlanInputs {
  /** Hash of the functions' source (package files, functions/, shared/): a change redeploys them. */
  sourceHash: string;
  /** Consul ACL policies of the agents: `packer/consul/files/acl/<name>.hcl` → rules. */
  agentPolicies: Record<string, string>;
  /** Consul ACL policy of each function that talks to Consul (`infra-scripts/acl/<kebab>.hcl`). */
  functionPolicies: Partial<Record<FunctionName, string>>;
  /**
   * `infra-scripts/acl/force-leave.hcl`: the policy of the force-leave token each function with
   * `forceLeave` holds apart from its main token; absent: no such token, no force-leave.
   */
  forceLeavePolicy?: string;
}

export const APP_LABEL = 'gce-ilb-orchestrator';
export const roles = ['consul', 'haproxy', 'backend', 'frontend'] as const;
type Role = (typeof roles)[number];

/** Per-function wiring. Concurrency × max instances follow bench/ figures (see README). */
export interface FunctionSpec {
  topic: string;
  /** Requests one instance serves at once (above 1 needs a whole CPU). */
  concurrency: number;
  maxInstances: number;
  timeout: string;
  memory: string;
  /** The only Compute permissions the function's code calls (the custom role). */
  permissions: string[];
  /** Force-leaves after deregistering: gets a second Consul token (force-leave.hcl). */
  forceLeave: boolean;
}

export const functionSpecs: Record<FunctionName, FunctionSpec> = {
  // ~64 events in flight at 500 events/s (bench): 4 × 32 leaves twice that.
  instanceEvents: {
    topic: 'instance-events',
    concurrency: 32,
    maxInstances: 4,
    timeout: '120s',
    memory: '512Mi',
    permissions: ['compute.instances.get'],
    forceLeave: true,
  },
  // One sweep at a time: two would race on the same catalog.
  healthSweep: {
    topic: 'health-sweep',
    concurrency: 1,
    maxInstances: 1,
    timeout: '300s',
    memory: '512Mi',
    // What shared/health-sweep calls: list members, read groups and instances, recreateInstances,
    // and write its custom metrics.
    permissions: [
      'compute.instanceGroupManagers.get',
      'compute.instanceGroupManagers.list',
      'compute.instanceGroupManagers.update',
      'compute.instances.get',
      'monitoring.timeSeries.create',
    ],
    forceLeave: true,
  },
  // Autoscaler changes are serialised: one incident at a time.
  scalingAlerts: {
    topic: 'scaling-alerts',
    concurrency: 1,
    maxInstances: 1,
    timeout: '120s',
    memory: '512Mi',
    // What shared/scaling-alerts calls: read and change autoscalers, wait on their operations, read
    // the group and its instance template (ownership by label), and write its custom metrics.
    permissions: [
      'compute.autoscalers.get',
      'compute.autoscalers.list',
      'compute.autoscalers.update',
      'compute.instanceGroupManagers.get',
      'compute.instanceGroupManagers.use',
      'compute.instanceTemplates.get',
      'compute.regionOperations.get',
      'compute.zoneOperations.get',
      'monitoring.timeSeries.create',
    ],
    forceLeave: false,
  },
};

/**
 * What healthSweep also calls when it runs scalingAlerts' lease pass (shared/scaling-alerts/sweep.ts,
 * with scalingAlerts deployed): read and change the rules' autoscalers (an update needs `use` of
 * the group it targets), wait on their operations, and read a group's template for owner labels.
 * No `list`: the pass reads the autoscalers the rules name.
 */
export const leasePassPermissions = [
  'compute.autoscalers.get',
  'compute.autoscalers.update',
  'compute.instanceGroupManagers.use',
  'compute.instanceTemplates.get',
  'compute.regionOperations.get',
  'compute.zoneOperations.get',
];

/** The custom role's permissions of a function in this deployment. */
export function rolePermissions(c: ResolvedConfig, f: FunctionName): string[] {
  const extra = f === 'healthSweep' && c.functions.includes('scalingAlerts') ? leasePassPermissions : [];
  return [...new Set([...functionSpecs[f].permissions, ...extra])].sort();
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const short = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 10);

/** host number n of a CIDR range, e.g. (10.10.0.0/20, 10) → 10.10.0.10 */
export function hostAddress(cidr: string, n: number): string {
  const [ip = '', bits = '32'] = cidr.split('/');
  const base = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  if (n <= 0 || n >= size - 1) throw new Error(`host ${n} is outside ${cidr}`);
  const mask = size === 2 ** 32 ? 0 : Math.floor(base / size) * size;
  const v = mask + n;
  return [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
}

/** Names of everything the deployment creates, derived from the config alone. */
export function names(c: ResolvedConfig) {
  const d = c.deployment;
  const sa = (id: string) => `${d}-${id}@${c.project}.iam.gserviceaccount.com`;
  return {
    network: `${d}-net`,
    subnet: `${d}-${c.region}`,
    fnSubnet: `${d}-fn-egress`,
    router: `${d}-router`,
    nat: `${d}-nat`,
    roleSa: (r: Role) => sa(r),
    fnSaId: (f: FunctionName) => `fn-${kebab(f)}`,
    fnSa: (f: FunctionName) => sa(`fn-${kebab(f)}`),
    customRole: (f: FunctionName) => `${d.replace(/-/g, '_')}_${f}`,
    consulServer: (i: number) => `consul-${d}-${i}`,
    consulAddressName: (i: number) => `${d}-consul-${i}`,
    consulIp: (i: number) => hostAddress(c.network.cidr, 10 + i),
    frontendAddress: `${d}-frontend`,
    healthCheck: (r: Role) => `${d}-${r}-hc`,
    mig: (r: Role) => `${d}-${r}`,
    baseInstanceName: (r: Role) => `${r}-${d}`,
    sink: `${d}-instance-events`,
    channel: `${d} scaling-alerts`,
    scheduler: `${d}-health-sweep`,
    /** The Cloud Run service behind a gen2 function: its entry point's name, lowercase. */
    fnService: (entry: string) => entry.toLowerCase(),
    agentToken: (policy: string) => `consul-agent-token-${policy}`,
    fnToken: (f: FunctionName) => `consul-token-fn-${kebab(f)}`,
    fnForceLeaveToken: (f: FunctionName) => `consul-token-fn-${kebab(f)}-force-leave`,
    /** The operators' HTTP entry point deployed next to healthSweep (same code, account, tokens). */
    sweepHttp: 'healthSweepHttp',
  };
}

/** The functions that hold a force-leave token: those with a Consul policy that force-leave. */
function forceLeaveFunctions(c: ResolvedConfig, inputs: PlanInputs): FunctionName[] {
  if (inputs.forceLeavePolicy === undefined) return [];
  return c.functions.filter((f) => functionSpecs[f].forceLeave && inputs.functionPolicies[f] !== undefined);
}

/**
 * `--set-env-vars` for these variables. A value with a comma (a JSON document) needs gcloud's
 * alternate delimiter syntax (`^|^A=1|B=2`, `gcloud topic escaping`).
 */
export function envVarsFlag(env: Record<string, string>): string {
  const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  if (!pairs.some((p) => p.includes(','))) return `--set-env-vars=${pairs.join(',')}`;
  if (pairs.some((p) => p.includes('|'))) throw new Error('an environment value holds both , and |');
  return `--set-env-vars=^|^${pairs.join('|')}`;
}

/** The secrets the deploy generates, with what generates their first version. */
function secretList(c: ResolvedConfig, inputs: PlanInputs) {
  const n = names(c);
  const generated: { name: string; secret: 'gossip-key' | 'uuid' }[] = [
    { name: 'consul-gossip-key', secret: 'gossip-key' },
    { name: 'consul-initial-management-token', secret: 'uuid' },
    ...Object.keys(inputs.agentPolicies)
      .sort()
      .map((p) => ({ name: n.agentToken(p), secret: 'uuid' as const })),
    ...c.functions
      .filter((f) => inputs.functionPolicies[f] !== undefined)
      .map((f) => ({ name: n.fnToken(f), secret: 'uuid' as const })),
    ...forceLeaveFunctions(c, inputs).map((f) => ({ name: n.fnForceLeaveToken(f), secret: 'uuid' as const })),
  ];
  const tls = ['consul-ca-cert', 'consul-ca-key', 'consul-server-cert', 'consul-server-key'] as const;
  return { generated, tls };
}

export function deployPlan(c: ResolvedConfig, inputs: PlanInputs): Plan {
  const n = names(c);
  const P = ['--project', c.project];
  const labels = `app=${APP_LABEL},deployment=${c.deployment}`;
  const marker = `${APP_LABEL} deployment=${c.deployment}`;
  const steps: Step[] = [];
  const lookups: Record<string, string[]> = {
    projectNumber: ['projects', 'describe', c.project, '--format=value(projectNumber)'],
  };
  const add = (id: string, title: string, check: Check, ...run: Command[]) =>
    steps.push({ id, title, runWhen: 'check-fails', check, run });
  const exists = (...args: string[]): Check => ({
    args: [...args, ...P, '--format=value(name)'],
    expect: 'exists',
  });
  const hasBinding = (args: string[], role: string, member: string): Check => ({
    args: [...args, ...P, '--format=json'],
    expect: { binding: { role, member } },
  });
  const cmd = (...args: string[]): Command => ({ args: [...args, ...P] });
  const sa = (r: Role) => `serviceAccount:${n.roleSa(r)}`;
  const vmRoles = [...roles];

  // Network: custom VPC, the VMs' subnet and the functions' egress subnet, NAT for package mirrors.
  add(
    'network',
    `network ${n.network}`,
    exists('compute', 'networks', 'describe', n.network),
    cmd('compute', 'networks', 'create', n.network, '--subnet-mode=custom', `--description=${marker}`),
  );
  for (const [name, range, what] of [
    [n.subnet, c.network.cidr, 'VMs'],
    [n.fnSubnet, c.network.functionsCidr, 'functions egress'],
  ] as const) {
    add(
      `subnet-${name}`,
      `subnet ${name} (${what}, ${range})`,
      exists('compute', 'networks', 'subnets', 'describe', name, `--region=${c.region}`),
      cmd(
        'compute',
        'networks',
        'subnets',
        'create',
        name,
        `--network=${n.network}`,
        `--region=${c.region}`,
        `--range=${range}`,
        '--enable-private-ip-google-access',
        `--description=${marker}`,
      ),
    );
  }
  add(
    'router',
    `Cloud Router ${n.router}`,
    exists('compute', 'routers', 'describe', n.router, `--region=${c.region}`),
    cmd(
      'compute',
      'routers',
      'create',
      n.router,
      `--network=${n.network}`,
      `--region=${c.region}`,
      `--description=${marker}`,
    ),
  );
  add(
    'nat',
    `Cloud NAT ${n.nat} (private VMs reach package mirrors)`,
    exists('compute', 'routers', 'nats', 'describe', n.nat, `--router=${n.router}`, `--region=${c.region}`),
    cmd(
      'compute',
      'routers',
      'nats',
      'create',
      n.nat,
      `--router=${n.router}`,
      `--region=${c.region}`,
      '--auto-allocate-nat-external-ips',
      `--nat-custom-subnet-ip-ranges=${n.subnet}`,
    ),
  );

  // Identities: one service account per role and per function.
  const accounts: [string, string][] = [
    ...vmRoles.map((r): [string, string] => [r, `${r} VMs`]),
    ...c.functions.map((f): [string, string] => [n.fnSaId(f), `function ${f}`]),
  ];
  for (const [id, what] of accounts) {
    const email = `${c.deployment}-${id}@${c.project}.iam.gserviceaccount.com`;
    add(
      `sa-${id}`,
      `service account ${email}`,
      {
        args: ['iam', 'service-accounts', 'describe', email, ...P, '--format=value(email)'],
        expect: 'exists',
      },
      cmd(
        'iam',
        'service-accounts',
        'create',
        `${c.deployment}-${id}`,
        `--display-name=${c.deployment} ${what}`,
        `--description=${marker}`,
      ),
    );
  }
  for (const f of c.functions) {
    const id = n.customRole(f);
    const permissions = rolePermissions(c, f);
    add(
      `role-${f}`,
      `custom role ${id}`,
      exists('iam', 'roles', 'describe', id),
      cmd(
        'iam',
        'roles',
        'create',
        id,
        `--title=${c.deployment} ${f}`,
        `--description=${marker}`,
        `--permissions=${permissions.join(',')}`,
        '--stage=GA',
      ),
    );
    add(
      `role-${f}-permissions`,
      `custom role ${id} holds exactly ${permissions.join(', ')}`,
      {
        args: ['iam', 'roles', 'describe', id, ...P, '--format=value(includedPermissions)'],
        expect: { equals: permissions.join(';') },
      },
      cmd('iam', 'roles', 'update', id, `--permissions=${permissions.join(',')}`),
    );
  }
  const projectBinding = (id: string, role: string, member: string) =>
    add(
      id,
      `grant ${role} to ${member}`,
      hasBinding(['projects', 'get-iam-policy', c.project], role, member),
      {
        args: [
          'projects',
          'add-iam-policy-binding',
          c.project,
          `--member=${member}`,
          `--role=${role}`,
          '--condition=None',
        ],
      },
    );
  for (const r of vmRoles) {
    projectBinding(`iam-${r}-logging`, 'roles/logging.logWriter', sa(r));
    projectBinding(`iam-${r}-metrics`, 'roles/monitoring.metricWriter', sa(r));
  }
  for (const f of c.functions) {
    projectBinding(
      `iam-${f}-compute`,
      `projects/${c.project}/roles/${n.customRole(f)}`,
      `serviceAccount:${n.fnSa(f)}`,
    );
  }

  // Secrets: created once, first version generated by the runner and fed on stdin, never printed.
  const secrets = secretList(c, inputs);
  const secretStep = (name: string) =>
    add(
      `secret-${name}`,
      `secret ${name}`,
      exists('secrets', 'describe', name),
      cmd('secrets', 'create', name, '--replication-policy=automatic', `--labels=${labels}`),
    );
  const versionCheck = (name: string): Check => ({
    args: ['secrets', 'versions', 'list', name, ...P, '--limit=1', '--format=value(name)'],
    expect: 'nonEmpty',
  });
  for (const s of secrets.generated) {
    secretStep(s.name);
    add(
      `secret-${s.name}-value`,
      `secret ${s.name}: first value (generated, not printed)`,
      versionCheck(s.name),
      {
        args: ['secrets', 'versions', 'add', s.name, '--data-file=-', ...P],
        stdin: { secret: s.secret },
      },
    );
  }
  for (const name of secrets.tls) secretStep(name);
  const serverIps = Array.from({ length: c.consul.servers }, (_, i) => n.consulIp(i));
  steps.push({
    id: 'secret-consul-tls-value',
    title: 'Consul CA and server certificate (generated, not printed)',
    runWhen: 'check-fails',
    // The key is written last: when it has a version, all four have one from the same run.
    check: versionCheck('consul-server-key'),
    run: secrets.tls.map((name) => ({
      args: ['secrets', 'versions', 'add', name, '--data-file=-', ...P],
      stdin: { secret: name.replace(/^consul-/, '') as 'ca-cert' | 'ca-key' | 'server-cert' | 'server-key' },
    })),
    tls: {
      dnsNames: [`server.${c.consul.datacenter}.consul`, 'localhost'],
      ips: [...serverIps, '127.0.0.1'],
    },
  });
  // Who reads which secret: each role its own tokens, the servers every token (they register them
  // in Consul), each function its own token and the CA.
  const readers = new Map<string, string[]>();
  const grant = (secret: string, member: string) =>
    readers.set(secret, [...(readers.get(secret) ?? []), member]);
  for (const r of vmRoles) {
    grant('consul-gossip-key', sa(r));
    grant('consul-ca-cert', sa(r));
  }
  for (const s of ['consul-server-cert', 'consul-server-key', 'consul-initial-management-token']) {
    grant(s, sa('consul'));
  }
  for (const policy of Object.keys(inputs.agentPolicies).sort()) {
    const role = policy.replace(/-default$/, '');
    if (role !== 'consul') grant(n.agentToken(policy), sa('consul'));
    if ((roles as readonly string[]).includes(role)) grant(n.agentToken(policy), sa(role as Role));
  }
  for (const f of c.functions) {
    grant('consul-ca-cert', `serviceAccount:${n.fnSa(f)}`);
    if (inputs.functionPolicies[f] !== undefined) {
      grant(n.fnToken(f), `serviceAccount:${n.fnSa(f)}`);
      grant(n.fnToken(f), sa('consul'));
    }
  }
  for (const f of forceLeaveFunctions(c, inputs)) {
    grant(n.fnForceLeaveToken(f), `serviceAccount:${n.fnSa(f)}`);
    grant(n.fnForceLeaveToken(f), sa('consul'));
  }
  for (const [secret, members] of readers) {
    for (const member of members) {
      add(
        `secret-${secret}-reader-${member}`,
        `${member} reads secret ${secret}`,
        hasBinding(['secrets', 'get-iam-policy', secret], 'roles/secretmanager.secretAccessor', member),
        cmd(
          'secrets',
          'add-iam-policy-binding',
          secret,
          `--member=${member}`,
          '--role=roles/secretmanager.secretAccessor',
        ),
      );
    }
  }

  // Addresses: the Consul servers' fixed private ones, the frontend's public one.
  for (let i = 0; i < c.consul.servers; i++) {
    add(
      `address-consul-${i}`,
      `private address ${n.consulIp(i)} for ${n.consulServer(i)}`,
      exists('compute', 'addresses', 'describe', n.consulAddressName(i), `--region=${c.region}`),
      cmd(
        'compute',
        'addresses',
        'create',
        n.consulAddressName(i),
        `--region=${c.region}`,
        `--subnet=${n.subnet}`,
        `--addresses=${n.consulIp(i)}`,
        `--description=${marker}`,
      ),
    );
  }
  add(
    'address-frontend',
    `public address ${n.frontendAddress}`,
    exists('compute', 'addresses', 'describe', n.frontendAddress, `--region=${c.region}`),
    cmd(
      'compute',
      'addresses',
      'create',
      n.frontendAddress,
      `--region=${c.region}`,
      `--description=${marker}`,
    ),
  );
  lookups.frontendIp = [
    'compute',
    'addresses',
    'describe',
    n.frontendAddress,
    `--region=${c.region}`,
    ...P,
    '--format=value(address)',
  ];

  // Firewall: sources and targets are service accounts (a tag can be set by anyone who may edit an
  // instance); address ranges only for Google's health checkers, IAP, the functions' egress and
  // the frontend's public port.
  const all = vmRoles.map((r) => n.roleSa(r)).join(',');
  const rules: [string, string, string[], string][] = [
    ['consul-lan', 'tcp:8301,udp:8301', [`--source-service-accounts=${all}`], all],
    ['consul-rpc', 'tcp:8300', [`--source-service-accounts=${all}`], n.roleSa('consul')],
    [
      'consul-wan',
      'tcp:8302,udp:8302',
      [`--source-service-accounts=${n.roleSa('consul')}`],
      n.roleSa('consul'),
    ],
    [
      'consul-https-functions',
      'tcp:8501',
      [`--source-ranges=${c.network.functionsCidr}`],
      n.roleSa('consul'),
    ],
    ['haproxy', 'tcp:8080', [`--source-service-accounts=${n.roleSa('frontend')}`], n.roleSa('haproxy')],
    ['backend', 'tcp:8080', [`--source-service-accounts=${n.roleSa('haproxy')}`], n.roleSa('backend')],
    [
      'health-checks',
      'tcp:80,tcp:8080',
      ['--source-ranges=35.191.0.0/16,130.211.0.0/22'],
      ['backend', 'haproxy', 'frontend'].map((r) => n.roleSa(r as Role)).join(','),
    ],
    // The ACL registration step reaches a Consul server through IAP only.
    ['iap-ssh', 'tcp:22', ['--source-ranges=35.235.240.0/20'], n.roleSa('consul')],
    ['frontend-public', 'tcp:80', ['--source-ranges=0.0.0.0/0'], n.roleSa('frontend')],
  ];
  for (const [suffix, allow, source, targets] of rules) {
    const name = `${c.deployment}-${suffix}`;
    add(
      `firewall-${suffix}`,
      `firewall ${name} (${allow})`,
      exists('compute', 'firewall-rules', 'describe', name),
      cmd(
        'compute',
        'firewall-rules',
        'create',
        name,
        `--network=${n.network}`,
        '--direction=INGRESS',
        `--allow=${allow}`,
        ...source,
        `--target-service-accounts=${targets}`,
        `--description=${marker}`,
      ),
    );
  }

  // Instance metadata: the images' contract (packer/README.md); secrets by Secret Manager name.
  const metadata = (role: Role, extra: Record<string, string> = {}) =>
    `--metadata=${Object.entries({
      'consul-servers': serverIps.join(' '),
      'consul-datacenter': c.consul.datacenter,
      'consul-gossip-key-secret': 'consul-gossip-key',
      'consul-agent-token-secret': n.agentToken(role),
      'consul-default-token-secret': n.agentToken(`${role}-default`),
      'consul-ca-cert-secret': 'consul-ca-cert',
      ...extra,
    })
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}`;
  const vm = (role: Role, machineType: string, family: string | undefined) => [
    `--machine-type=${machineType}`,
    `--image-family=${family ?? `ilb-${role}`}`,
    `--image-project=${c.imageProject}`,
    `--service-account=${n.roleSa(role)}`,
    '--scopes=cloud-platform',
    '--shielded-secure-boot',
    '--shielded-vtpm',
    '--shielded-integrity-monitoring',
    `--labels=${labels},role=${role}`,
  ];

  // Consul servers: fixed names and private addresses, no external IP.
  for (let i = 0; i < c.consul.servers; i++) {
    const zone = c.zones[i % c.zones.length] as string;
    add(
      `consul-server-${i}`,
      `Consul server ${n.consulServer(i)} in ${zone}`,
      exists('compute', 'instances', 'describe', n.consulServer(i), `--zone=${zone}`),
      cmd(
        'compute',
        'instances',
        'create',
        n.consulServer(i),
        `--zone=${zone}`,
        `--subnet=${n.subnet}`,
        `--private-network-ip=${n.consulIp(i)}`,
        '--no-address',
        ...vm('consul', c.consul.machineType, c.consul.imageFamily),
        metadata('consul', {
          'consul-bootstrap-expect': String(c.consul.servers),
          'consul-server-cert-secret': 'consul-server-cert',
          'consul-server-key-secret': 'consul-server-key',
          'consul-initial-management-token-secret': 'consul-initial-management-token',
        }),
      ),
    );
  }

  // ACL policies and tokens: registered in Consul, on a server over IAP, with the token secrets
  // the deploy generated (the script reads them there; they never cross this machine).
  const acl = aclScript(c, inputs);
  const aclHash = short(acl.script);
  const aclCheck: Check = {
    args: [
      'secrets',
      'describe',
      'consul-initial-management-token',
      ...P,
      '--format=value(labels.acl_registered)',
    ],
    expect: { equals: aclHash },
  };
  add(
    'consul-acl',
    `Consul ACL policies and tokens (${acl.count} tokens, on ${n.consulServer(0)})`,
    aclCheck,
    {
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
      stdin: { script: acl.script, lines: acl.script.split('\n').length },
    },
  );
  add(
    'consul-acl-mark',
    'record the registered ACL set on the management token secret',
    aclCheck,
    cmd('secrets', 'update', 'consul-initial-management-token', `--update-labels=acl_registered=${aclHash}`),
  );

  // Tiers: health check, template (its name carries a hash of its content: templates are immutable),
  // regional MIG with autohealing, autoscaler.
  const tiers: { role: Exclude<Role, 'consul'>; port: number }[] = [
    { role: 'backend', port: 8080 },
    { role: 'haproxy', port: 8080 },
    { role: 'frontend', port: 80 },
  ];
  for (const { role, port } of tiers) {
    add(
      `health-check-${role}`,
      `health check ${n.healthCheck(role)} (:${port}/healthz)`,
      exists('compute', 'health-checks', 'describe', n.healthCheck(role)),
      cmd(
        'compute',
        'health-checks',
        'create',
        'http',
        n.healthCheck(role),
        `--port=${port}`,
        '--request-path=/healthz',
        '--check-interval=10s',
        '--timeout=5s',
        '--healthy-threshold=2',
        '--unhealthy-threshold=3',
        `--description=${marker}`,
      ),
    );
  }
  for (const { role } of tiers) {
    const tier = c[role];
    const templateArgs = [
      ...vm(role, tier.machineType, tier.imageFamily),
      `--region=${c.region}`,
      `--subnet=${n.subnet}`,
      ...(role === 'frontend' ? ['--address=@{frontendIp}'] : ['--no-address']),
      metadata(role),
    ];
    const template = `${c.deployment}-${role}-${short(templateArgs.join('\n'))}`;
    const mig = n.mig(role);
    add(
      `template-${role}`,
      `instance template ${template}`,
      exists('compute', 'instance-templates', 'describe', template),
      cmd('compute', 'instance-templates', 'create', template, ...templateArgs, `--description=${marker}`),
    );
    // The frontend's one public address fits one instance: a zonal group of size 1.
    const where = role === 'frontend' ? [`--zone=${c.zones[0] as string}`] : [`--region=${c.region}`];
    const size = role === 'frontend' ? 1 : c[role].min;
    add(
      `mig-${role}`,
      `managed instance group ${mig} (${role === 'frontend' ? c.zones[0] : c.zones.join(', ')}, size ${size})`,
      exists('compute', 'instance-groups', 'managed', 'describe', mig, ...where),
      cmd(
        'compute',
        'instance-groups',
        'managed',
        'create',
        mig,
        ...where,
        ...(role === 'frontend' ? [] : [`--zones=${c.zones.join(',')}`]),
        `--template=${template}`,
        `--size=${size}`,
        `--base-instance-name=${n.baseInstanceName(role)}`,
        `--health-check=${n.healthCheck(role)}`,
        '--initial-delay=300',
        `--description=${marker}`,
      ),
    );
    // A changed template rolls out (a new template name means new content).
    add(
      `mig-${role}-template`,
      `${mig} runs ${template}`,
      {
        args: [
          'compute',
          'instance-groups',
          'managed',
          'describe',
          mig,
          ...where,
          ...P,
          '--format=value(instanceTemplate)',
        ],
        expect: { contains: template },
      },
      cmd(
        'compute',
        'instance-groups',
        'managed',
        'rolling-action',
        'start-update',
        mig,
        ...where,
        `--version=template=${template}`,
      ),
    );
    if (role !== 'frontend') {
      const t = c[role];
      add(
        `autoscaler-${role}`,
        `autoscaler of ${mig} (${t.min}–${t.max}, CPU ${t.targetCpu})`,
        {
          args: [
            'compute',
            'instance-groups',
            'managed',
            'describe',
            mig,
            ...where,
            ...P,
            '--format=value(status.autoscaler)',
          ],
          expect: 'nonEmpty',
        },
        cmd(
          'compute',
          'instance-groups',
          'managed',
          'set-autoscaling',
          mig,
          ...where,
          `--min-num-replicas=${t.min}`,
          `--max-num-replicas=${t.max}`,
          `--target-cpu-utilization=${t.targetCpu}`,
          '--cool-down-period=120',
          '--mode=on',
        ),
      );
    }
  }

  // Events: topics with dead-letter topics (and a subscription holding dead letters).
  for (const f of c.functions) {
    const topic = functionSpecs[f].topic;
    for (const t of [topic, `${topic}-dead-letter`]) {
      add(
        `topic-${t}`,
        `Pub/Sub topic ${t}`,
        exists('pubsub', 'topics', 'describe', t),
        cmd('pubsub', 'topics', 'create', t, `--labels=${labels}`),
      );
    }
    add(
      `subscription-${topic}-dead-letter`,
      `subscription ${topic}-dead-letter-hold (keeps dead letters 7 days)`,
      exists('pubsub', 'subscriptions', 'describe', `${topic}-dead-letter-hold`),
      cmd(
        'pubsub',
        'subscriptions',
        'create',
        `${topic}-dead-letter-hold`,
        `--topic=${topic}-dead-letter`,
        '--message-retention-duration=7d',
        `--labels=${labels}`,
      ),
    );
  }
  const topicPublisher = (id: string, topic: string, member: string, why: string) =>
    add(
      id,
      `${why} publishes to ${topic}`,
      hasBinding(['pubsub', 'topics', 'get-iam-policy', topic], 'roles/pubsub.publisher', member),
      cmd(
        'pubsub',
        'topics',
        'add-iam-policy-binding',
        topic,
        `--member=${member}`,
        '--role=roles/pubsub.publisher',
      ),
    );

  if (c.functions.includes('instanceEvents')) {
    // Audit activity and system_event (preemption, host errors) of the watched instances only.
    const logs = ['activity', 'system_event']
      .map((l) => `logName="projects/${c.project}/logs/cloudaudit.googleapis.com%2F${l}"`)
      .join(' OR ');
    const watched = tiers
      .map(({ role }) => `protoPayload.resourceName:"/instances/${n.baseInstanceName(role)}-"`)
      .join(' OR ');
    const filter = `resource.type="gce_instance" AND (${logs}) AND protoPayload.methodName:"compute.instances." AND (${watched})`;
    add(
      'sink-instance-events',
      `log sink ${n.sink} → instance-events`,
      exists('logging', 'sinks', 'describe', n.sink),
      cmd(
        'logging',
        'sinks',
        'create',
        n.sink,
        `pubsub.googleapis.com/projects/${c.project}/topics/instance-events`,
        `--log-filter=${filter}`,
        `--description=${marker}`,
      ),
    );
    lookups.sinkWriter = ['logging', 'sinks', 'describe', n.sink, ...P, '--format=value(writerIdentity)'];
    topicPublisher('sink-writer-publishes', 'instance-events', '@{sinkWriter}', "the sink's writer identity");
  }
  if (c.functions.includes('scalingAlerts')) {
    // The names gcloud gave the autoscalers (`<group>-<random>`), for the rules' placeholders.
    for (const role of ['backend', 'haproxy'] as const) {
      lookups[`autoscaler-${role}`] = [
        'compute',
        'instance-groups',
        'managed',
        'describe',
        n.mig(role),
        `--region=${c.region}`,
        ...P,
        '--format=value(status.autoscaler.basename())',
      ];
    }
    lookups.channel = [
      'beta',
      'monitoring',
      'channels',
      'list',
      `--filter=displayName="${n.channel}"`,
      ...P,
      '--format=value(name)',
    ];
    add(
      'channel-scaling-alerts',
      `notification channel "${n.channel}" → scaling-alerts`,
      { args: lookups.channel, expect: 'nonEmpty' },
      cmd(
        'beta',
        'monitoring',
        'channels',
        'create',
        `--display-name=${n.channel}`,
        '--type=pubsub',
        `--channel-labels=topic=projects/${c.project}/topics/scaling-alerts`,
        `--user-labels=${labels}`,
        `--description=${marker}`,
      ),
    );
    // Without this grant Monitoring drops the notifications silently.
    topicPublisher(
      'monitoring-agent-publishes',
      'scaling-alerts',
      'serviceAccount:service-@{projectNumber}@gcp-sa-monitoring-notification.iam.gserviceaccount.com',
      'the Monitoring notification service agent',
    );
    for (const role of ['backend', 'haproxy'] as const) {
      const displayName = `${c.deployment} ${role} CPU high`;
      const policy = {
        displayName,
        combiner: 'OR',
        conditions: [
          {
            displayName: `${role} mean CPU above ${c[role].targetCpu + 0.2 > 1 ? 1 : c[role].targetCpu + 0.2}`,
            conditionThreshold: {
              filter: `resource.type = "gce_instance" AND metric.type = "compute.googleapis.com/instance/cpu/utilization" AND metadata.user_labels."deployment" = "${c.deployment}" AND metadata.user_labels."role" = "${role}"`,
              aggregations: [
                { alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN', crossSeriesReducer: 'REDUCE_MEAN' },
              ],
              comparison: 'COMPARISON_GT',
              thresholdValue: Math.min(1, c[role].targetCpu + 0.2),
              duration: '300s',
            },
          },
        ],
        // scalingAlerts acts on open and undoes on close: both must be notified.
        alertStrategy: { notificationPrompts: ['OPENED', 'CLOSED'], autoClose: '1800s' },
        notificationChannels: ['@{channel}'],
        userLabels: { app: APP_LABEL, deployment: c.deployment },
      };
      const list = [
        'alpha',
        'monitoring',
        'policies',
        'list',
        `--filter=displayName="${displayName}"`,
        ...P,
        '--format=value(name)',
      ];
      add(
        `alert-policy-${role}`,
        `alert policy "${displayName}" (notifies on open and close)`,
        { args: list, expect: 'nonEmpty' },
        cmd('alpha', 'monitoring', 'policies', 'create', `--policy=${JSON.stringify(policy)}`),
      );
    }
  }
  if (c.functions.includes('healthSweep')) {
    add(
      'scheduler-health-sweep',
      `Cloud Scheduler job ${n.scheduler} (${c.healthSweepSchedule}) → health-sweep`,
      exists('scheduler', 'jobs', 'describe', n.scheduler, `--location=${c.region}`),
      cmd(
        'scheduler',
        'jobs',
        'create',
        'pubsub',
        n.scheduler,
        `--location=${c.region}`,
        `--schedule=${c.healthSweepSchedule}`,
        '--time-zone=Etc/UTC',
        `--topic=projects/${c.project}/topics/health-sweep`,
        '--message-body={}',
        `--description=${marker}`,
      ),
    );
  }

  // Functions: own service account, retries, internal-only ingress, Consul tokens from Secret
  // Manager, Direct VPC egress to the servers' private HTTPS API.
  const leaving = new Set(forceLeaveFunctions(c, inputs));
  const deployFunction = (f: FunctionName, entry: string, http: boolean) => {
    const spec = functionSpecs[f];
    const fnSa = n.fnSa(f);
    const env: Record<string, string> = {
      GOOGLE_CLOUD_PROJECT: c.project,
      CONSUL_HTTP_ADDR: `https://${n.consulIp(0)}:8501`,
      CONSUL_CACERT: '/secrets/consul-ca/ca.pem',
      CONSUL_TLS_SERVER_NAME: `server.${c.consul.datacenter}.consul`,
      ...(f === 'healthSweep' ? { HEALTH_SWEEP_CONFIG_JSON: JSON.stringify(healthSweepDocument(c)) } : {}),
      // scalingAlerts' rules, and healthSweep's for the lease pass it runs (only with scalingAlerts).
      ...((f === 'scalingAlerts' || f === 'healthSweep') && c.scalingRules
        ? { SCALING_RULES_JSON: JSON.stringify(c.scalingRules) }
        : {}),
    };
    const secretsArg = [
      ...(inputs.functionPolicies[f] !== undefined ? [`CONSUL_HTTP_TOKEN=${n.fnToken(f)}:latest`] : []),
      ...(leaving.has(f) ? [`CONSUL_FORCE_LEAVE_TOKEN=${n.fnForceLeaveToken(f)}:latest`] : []),
      '/secrets/consul-ca/ca.pem=consul-ca-cert:latest',
    ].join(',');
    const deployArgs = [
      `--region=${c.region}`,
      '--gen2',
      '--runtime=nodejs22',
      '--source=.',
      '--ignore-file=infra-scripts/deploy/functions.gcloudignore',
      `--entry-point=${entry}`,
      // The HTTP entry point answers its caller: nothing to redeliver.
      ...(http
        ? ['--trigger-http']
        : [`--trigger-topic=${spec.topic}`, `--trigger-service-account=${fnSa}`, '--retry']),
      `--service-account=${fnSa}`,
      `--concurrency=${spec.concurrency}`,
      '--cpu=1',
      `--memory=${spec.memory}`,
      `--max-instances=${spec.maxInstances}`,
      `--timeout=${spec.timeout}`,
      `--ingress-settings=${http ? c.healthSweep.httpIngress : 'internal-only'}`,
      '--no-allow-unauthenticated',
      envVarsFlag(env),
      `--set-secrets=${secretsArg}`,
    ];
    const hash = short([inputs.sourceHash, ...deployArgs].join('\n'));
    add(
      `function-${entry}`,
      http
        ? `function ${entry} (HTTP, IAM invokers only: ${c.healthSweep.invokers.join(', ') || 'none yet'})`
        : `function ${entry} (concurrency ${spec.concurrency}, max ${spec.maxInstances} instances)`,
      {
        args: [
          'functions',
          'describe',
          entry,
          `--region=${c.region}`,
          ...P,
          '--format=value(labels.config_hash)',
        ],
        expect: { equals: hash },
      },
      cmd('functions', 'deploy', entry, ...deployArgs, `--update-labels=${labels},config_hash=${hash}`),
    );
    const svc = n.fnService(entry);
    add(
      `function-${entry}-egress`,
      `function ${entry}: Direct VPC egress through ${n.fnSubnet}`,
      {
        args: ['run', 'services', 'describe', svc, `--region=${c.region}`, ...P, '--format=json'],
        // The network interfaces are a JSON string inside the service's annotations.
        expect: { contains: n.fnSubnet },
      },
      cmd(
        'run',
        'services',
        'update',
        svc,
        `--region=${c.region}`,
        `--network=${n.network}`,
        `--subnet=${n.fnSubnet}`,
        '--vpc-egress=private-ranges-only',
      ),
    );
    // Who may invoke: the trigger's identity for an event function; for the HTTP one, only the
    // operators the config names (never allUsers: the config accepts groups, users and accounts).
    const invokers = http ? c.healthSweep.invokers : [`serviceAccount:${fnSa}`];
    for (const member of invokers) {
      add(
        http ? `function-${entry}-invoker-${member}` : `function-${entry}-invoker`,
        http
          ? `function ${entry}: ${member} may invoke it`
          : `function ${entry}: its trigger's identity may invoke it`,
        hasBinding(
          ['run', 'services', 'get-iam-policy', svc, `--region=${c.region}`],
          'roles/run.invoker',
          member,
        ),
        cmd('functions', 'add-invoker-policy-binding', entry, `--region=${c.region}`, `--member=${member}`),
      );
    }
  };
  for (const f of c.functions) {
    const spec = functionSpecs[f];
    deployFunction(f, f, false);
    lookups[`trigger-${f}`] = [
      'functions',
      'describe',
      f,
      `--region=${c.region}`,
      ...P,
      '--format=value(eventTrigger.trigger)',
    ];
    lookups[`subscription-${f}`] = [
      'eventarc',
      'triggers',
      'describe',
      `@{trigger-${f}}`,
      `--location=${c.region}`,
      ...P,
      '--format=value(transport.pubsub.subscription)',
    ];
    const sub = `@{subscription-${f}}`;
    add(
      `function-${f}-dead-letter`,
      `function ${f}: its trigger's subscription dead-letters to ${spec.topic}-dead-letter`,
      {
        args: [
          'pubsub',
          'subscriptions',
          'describe',
          sub,
          ...P,
          '--format=value(deadLetterPolicy.deadLetterTopic)',
        ],
        expect: { contains: `/topics/${spec.topic}-dead-letter` },
      },
      cmd(
        'pubsub',
        'subscriptions',
        'update',
        sub,
        `--dead-letter-topic=${spec.topic}-dead-letter`,
        '--max-delivery-attempts=10',
        '--min-retry-delay=10s',
        '--max-retry-delay=600s',
      ),
    );
    // Pub/Sub's own agent moves dead letters: it publishes to the dead-letter topic and acks the source.
    const pubsubAgent = 'serviceAccount:service-@{projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com';
    topicPublisher(
      `function-${f}-dead-letter-publisher`,
      `${spec.topic}-dead-letter`,
      pubsubAgent,
      'the Pub/Sub service agent',
    );
    add(
      `function-${f}-dead-letter-subscriber`,
      `the Pub/Sub service agent acknowledges dead letters of ${f}'s subscription`,
      hasBinding(['pubsub', 'subscriptions', 'get-iam-policy', sub], 'roles/pubsub.subscriber', pubsubAgent),
      cmd(
        'pubsub',
        'subscriptions',
        'add-iam-policy-binding',
        sub,
        `--member=${pubsubAgent}`,
        '--role=roles/pubsub.subscriber',
      ),
    );
  }
  if (c.healthSweepHttp) deployFunction('healthSweep', n.sweepHttp, true);
  return { steps, lookups };
}

/** The script run on a Consul server: policies from the repository's HCL, tokens from Secret Manager. */
function aclScript(c: ResolvedConfig, inputs: PlanInputs): { script: string; count: number } {
  const n = names(c);
  const entries: { policy: string; rules: string; token: string; description: string }[] = [
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
        : [{ policy: `fn-${kebab(f)}`, rules, token: n.fnToken(f), description: `fn ${f}` }];
    }),
    // One policy (the repository's force-leave.hcl), a token per function: either can be revoked alone.
    ...forceLeaveFunctions(c, inputs).map((f) => ({
      policy: 'fn-force-leave',
      rules: inputs.forceLeavePolicy as string,
      token: n.fnForceLeaveToken(f),
      description: `fn ${f} force-leave`,
    })),
  ];
  const lines = [
    'set -euo pipefail',
    'export CONSUL_HTTP_ADDR=127.0.0.1:8500',
    `project=${c.project}`,
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
  lines.push(`echo "ACL: ${written.size} policies and ${entries.length} tokens in place"`);
  return { script: `${lines.join('\n')}\n`, count: entries.length };
}

/**
 * Teardown: the deploy's resources in reverse order, each deleted only when it exists and carries
 * this deployment's label or description (IAM bindings go with their resource, except the
 * project's, which are removed).
 */
export function teardownPlan(c: ResolvedConfig, inputs: PlanInputs): Plan {
  const n = names(c);
  const P = ['--project', c.project];
  const marker = `${APP_LABEL} deployment=${c.deployment}`;
  const deploy = deployPlan(c, inputs);
  const byLabel = (...args: string[]): Check => ({
    args: [...args, ...P, '--format=value(labels.deployment)'],
    expect: { equals: c.deployment },
  });
  const byDescription = (...args: string[]): Check => ({
    args: [...args, ...P, '--format=value(description)'],
    expect: { equals: marker },
  });
  const steps: Step[] = [];
  const del = (id: string, title: string, check: Check, ...args: string[]) =>
    steps.push({ id, title, runWhen: 'check-passes', check, run: [{ args: [...args, ...P, '--quiet'] }] });
  const lookups: Record<string, string[]> = { ...deploy.lookups };

  for (const step of [...deploy.steps].reverse()) {
    const a = step.run[0]?.args ?? [];
    const verbAt = a.findIndex((x) => x === 'create' || x === 'deploy' || x === 'add-iam-policy-binding');
    const group = a.slice(0, verbAt);
    const verb = a[verbAt];
    const rest = a.slice(verbAt + 1).filter((x) => x !== '--project' && x !== c.project);
    // `health-checks create http NAME` and `scheduler jobs create pubsub NAME` name a type first.
    const typed = ['compute health-checks', 'scheduler jobs'].includes(group.join(' '));
    const name = rest[typed ? 1 : 0] as string;
    const scope = rest.filter((x) => /^--(region|zone|location|router)=/.test(x));
    const key = group.join(' ');
    if (verb === 'add-iam-policy-binding' && key === 'projects') {
      const member = rest.find((x) => x.startsWith('--member=')) as string;
      const role = rest.find((x) => x.startsWith('--role=')) as string;
      steps.push({
        id: `remove-${step.id}`,
        title: `remove ${step.title.replace(/^grant /, '')}`,
        runWhen: 'check-passes',
        check: step.check,
        run: [
          {
            args: [
              'projects',
              'remove-iam-policy-binding',
              c.project,
              member,
              role,
              '--condition=None',
              '--quiet',
            ],
          },
        ],
      });
      continue;
    }
    if (verb !== 'create' && verb !== 'deploy') continue;
    const title = `delete ${step.title}`;
    const id = `delete-${step.id}`;
    switch (key) {
      case 'functions':
        del(
          id,
          title,
          byLabel('functions', 'describe', name, ...scope),
          'functions',
          'delete',
          name,
          ...scope,
        );
        break;
      case 'scheduler jobs':
        del(
          id,
          title,
          byDescription('scheduler', 'jobs', 'describe', name, ...scope),
          'scheduler',
          'jobs',
          'delete',
          name,
          ...scope,
        );
        break;
      case 'alpha monitoring policies': {
        const list = step.check.args;
        const lookup = `policy-${step.id}`;
        lookups[lookup] = list;
        steps.push({
          id,
          title,
          runWhen: 'check-passes',
          check: { args: list, expect: 'nonEmpty' },
          run: [{ args: ['alpha', 'monitoring', 'policies', 'delete', `@{${lookup}}`, ...P, '--quiet'] }],
        });
        break;
      }
      case 'beta monitoring channels':
        steps.push({
          id,
          title,
          runWhen: 'check-passes',
          check: { args: lookups.channel as string[], expect: 'nonEmpty' },
          run: [
            { args: ['beta', 'monitoring', 'channels', 'delete', '@{channel}', '--force', ...P, '--quiet'] },
          ],
        });
        break;
      case 'logging sinks':
        del(
          id,
          title,
          byDescription('logging', 'sinks', 'describe', name),
          'logging',
          'sinks',
          'delete',
          name,
        );
        break;
      case 'pubsub topics':
      case 'pubsub subscriptions':
      case 'secrets':
        del(id, title, byLabel(...group, 'describe', name), ...group, 'delete', name);
        break;
      case 'compute instance-groups managed':
      case 'compute health-checks':
      case 'compute addresses':
      case 'compute firewall-rules':
      case 'compute routers':
      case 'compute networks subnets':
      case 'compute networks':
        del(
          id,
          title,
          byDescription(...group, 'describe', name, ...scope),
          ...group,
          'delete',
          name,
          ...scope,
        );
        break;
      case 'compute instance-templates': {
        // Every template the deployment ever made (earlier configurations left theirs too).
        const lookup = `templates-${step.id}`;
        lookups[lookup] = [
          'compute',
          'instance-templates',
          'list',
          `--filter=name~^${c.deployment}-${step.id.replace('template-', '')}- AND description="${marker}"`,
          ...P,
          '--format=value(name)',
        ];
        steps.push({
          id,
          title: `delete instance templates of ${step.id.replace('template-', '')}`,
          runWhen: 'check-passes',
          check: { args: lookups[lookup], expect: 'nonEmpty' },
          run: [{ args: ['compute', 'instance-templates', 'delete', `@{${lookup}}`, ...P, '--quiet'] }],
        });
        break;
      }
      case 'compute instances':
        del(
          id,
          title,
          byLabel('compute', 'instances', 'describe', name, ...scope),
          'compute',
          'instances',
          'delete',
          name,
          ...scope,
        );
        break;
      case 'compute routers nats':
        // A NAT has no description of its own: its router's says whose it is.
        steps.push({
          id,
          title,
          runWhen: 'check-passes',
          check: byDescription('compute', 'routers', 'describe', n.router, `--region=${c.region}`),
          run: [{ args: ['compute', 'routers', 'nats', 'delete', name, ...scope, ...P, '--quiet'] }],
        });
        break;
      case 'iam service-accounts': {
        const email = `${name}@${c.project}.iam.gserviceaccount.com`;
        del(
          id,
          title,
          byDescription('iam', 'service-accounts', 'describe', email),
          'iam',
          'service-accounts',
          'delete',
          email,
        );
        break;
      }
      case 'iam roles':
        del(id, title, byDescription('iam', 'roles', 'describe', name), 'iam', 'roles', 'delete', name);
        break;
      default:
        throw new Error(`teardown: no delete for ${key}`);
    }
  }
  return { steps, lookups };
}
