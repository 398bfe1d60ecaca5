import type { Step } from '../plan';
import type { Kit, Part } from './kit';
import { short, type Role } from './names';
import { metadataArg, vmArgs } from './vm';

/** The tiers in managed instance groups, with the port their health check asks. */
export const tiers: { role: Exclude<Role, 'consul'>; port: number }[] = [
  { role: 'backend', port: 8080 },
  { role: 'haproxy', port: 8080 },
  { role: 'frontend', port: 80 },
];

/**
 * Each tier: health check, template (its name carries a hash of its content: templates are
 * immutable), MIG with autohealing (regional; the frontend zonal), autoscaler.
 */
export function instanceGroupSteps(k: Kit): Part {
  const { n, marker } = k;
  const healthChecks = tiers.map(({ role, port }) =>
    k.resource(`health-check-${role}`, `health check ${n.healthCheck(role)} (:${port}/healthz)`, {
      group: ['compute', 'health-checks'],
      type: 'http',
      name: n.healthCheck(role),
      args: [
        `--port=${port}`,
        '--request-path=/healthz',
        '--check-interval=10s',
        '--timeout=5s',
        '--healthy-threshold=2',
        '--unhealthy-threshold=3',
        `--description=${marker}`,
      ],
    }),
  );
  return { steps: [...healthChecks, ...tiers.flatMap(({ role }) => groupSteps(k, role))] };
}

/** A tier's template, group, the rollout of a changed template, and its autoscaler. */
function groupSteps(k: Kit, role: Exclude<Role, 'consul'>): Step[] {
  const { c, n, P, marker } = k;
  const tier = c[role];
  const templateArgs = [
    ...vmArgs(k, role, tier.machineType, tier.imageFamily),
    `--region=${c.region}`,
    `--subnet=${n.subnet}`,
    ...(role === 'frontend' ? ['--address=@{frontendIp}'] : ['--no-address']),
    metadataArg(k, role),
  ];
  const template = `${c.deployment}-${role}-${short(templateArgs.join('\n'))}`;
  const mig = n.mig(role);
  const managed = ['compute', 'instance-groups', 'managed'];
  // The frontend's one public address fits one instance: a zonal group of size 1.
  const where = role === 'frontend' ? [`--zone=${c.zones[0] as string}`] : [`--region=${c.region}`];
  const size = role === 'frontend' ? 1 : c[role].min;
  // listManagedInstances pages (maxResults, pageToken) as the emulator does; gcloud's default is
  // pageless: https://cloud.google.com/sdk/gcloud/reference/compute/instance-groups/managed/create
  const paged = '--list-managed-instances-results=paginated';
  const describe = (format: string) => [...managed, 'describe', mig, ...where, ...P, `--format=${format}`];
  const steps = [
    k.resource(`template-${role}`, `instance template ${template}`, {
      group: ['compute', 'instance-templates'],
      name: template,
      args: [...templateArgs, `--description=${marker}`],
    }),
    k.resource(
      `mig-${role}`,
      `managed instance group ${mig} (${role === 'frontend' ? c.zones[0] : c.zones.join(', ')}, size ${size})`,
      {
        group: managed,
        name: mig,
        scope: where,
        args: [
          ...where,
          ...(role === 'frontend' ? [] : [`--zones=${c.zones.join(',')}`]),
          `--template=${template}`,
          `--size=${size}`,
          `--base-instance-name=${n.baseInstanceName(role)}`,
          `--health-check=${n.healthCheck(role)}`,
          '--initial-delay=300',
          paged,
          `--description=${marker}`,
        ],
      },
    ),
    // Groups made before the flag above converge too.
    k.step(
      `mig-${role}-paging`,
      `${mig} pages listManagedInstances`,
      { args: describe('value(listManagedInstancesResults)'), expect: { equals: 'PAGINATED' } },
      k.cmd(...managed, 'update', mig, ...where, paged),
    ),
    // A changed template rolls out (a new template name means new content).
    k.step(
      `mig-${role}-template`,
      `${mig} runs ${template}`,
      { args: describe('value(instanceTemplate)'), expect: { contains: template } },
      k.cmd(...managed, 'rolling-action', 'start-update', mig, ...where, `--version=template=${template}`),
    ),
  ];
  if (role === 'frontend') return steps;
  const t = c[role];
  return [
    ...steps,
    k.step(
      `autoscaler-${role}`,
      `autoscaler of ${mig} (${t.min}–${t.max}, CPU ${t.targetCpu})`,
      { args: describe('value(status.autoscaler)'), expect: 'nonEmpty' },
      k.cmd(
        ...managed,
        'set-autoscaling',
        mig,
        ...where,
        `--min-num-replicas=${t.min}`,
        `--max-num-replicas=${t.max}`,
        `--target-cpu-utilization=${t.targetCpu}`,
        '--cool-down-period=120',
        '--mode=on',
      ),
    ),
  ];
}

/**
 * The names gcloud gave the regional autoscalers (`<group>-<random>`), for the placeholders of
 * scalingAlerts' rules.
 */
export function autoscalerLookups(k: Kit): Record<string, string[]> {
  const { c, n, P } = k;
  return Object.fromEntries(
    (['backend', 'haproxy'] as const).map((role) => [
      `autoscaler-${role}`,
      [
        'compute',
        'instance-groups',
        'managed',
        'describe',
        n.mig(role),
        `--region=${c.region}`,
        ...P,
        '--format=value(status.autoscaler.basename())',
      ],
    ]),
  );
}
