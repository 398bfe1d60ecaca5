import { topicFunctions, type TopicFunctionName } from '../../../functions/catalog';
import type { ResolvedConfig } from '../config';
import type { Step } from '../plan';
import type { Kit, Part } from './kit';
import { roles } from './names';

/** The custom role's permissions of a function in this deployment. */
export function rolePermissions(c: ResolvedConfig, f: TopicFunctionName): string[] {
  const spec: { permissions: readonly string[]; leasePassPermissions?: readonly string[] } =
    topicFunctions[f];
  // The lease pass runs only where scalingAlerts is deployed (its rules reach the function).
  const extra = c.functions.includes('scalingAlerts') ? (spec.leasePassPermissions ?? []) : [];
  return [...new Set([...spec.permissions, ...extra])].sort();
}

/**
 * One service account per VM role and per function; a custom role per function holding exactly the
 * permissions its code calls; the project-level grants.
 */
export function identitySteps(k: Kit): Part {
  const { c, n, P, marker } = k;
  const accounts: [string, string][] = [
    ...roles.map((r): [string, string] => [r, `${r} VMs`]),
    ...c.functions.map((f): [string, string] => [n.fnSaId(f), `function ${f}`]),
    ...(c.functions.length > 0 ? [[n.buildSaId, 'builds of the functions'] as [string, string]] : []),
  ];
  const accountSteps = accounts.map(([id, what]) => {
    const email = `${c.deployment}-${id}@${c.project}.iam.gserviceaccount.com`;
    return k.step(
      `sa-${id}`,
      `service account ${email}`,
      {
        args: ['iam', 'service-accounts', 'describe', email, ...P, '--format=value(email)'],
        expect: 'exists',
      },
      k.cmd(
        'iam',
        'service-accounts',
        'create',
        `${c.deployment}-${id}`,
        `--display-name=${c.deployment} ${what}`,
        `--description=${marker}`,
      ),
    );
  });
  const roleSteps = c.functions.flatMap((f) => {
    const id = n.customRole(f);
    const permissions = rolePermissions(c, f);
    return [
      k.resource(`role-${f}`, `custom role ${id}`, {
        group: ['iam', 'roles'],
        name: id,
        args: [
          `--title=${c.deployment} ${f}`,
          `--description=${marker}`,
          `--permissions=${permissions.join(',')}`,
          '--stage=GA',
        ],
      }),
      // A role deleted by a teardown stays for 7 days, `describe` still finds it (`deleted: true`)
      // and a binding of it fails; its ID cannot be created again meanwhile, so it is undeleted.
      // https://cloud.google.com/iam/docs/reference/rest/v1/projects.roles/delete
      k.step(
        `role-${f}-undeleted`,
        `custom role ${id} is not deleted`,
        { args: ['iam', 'roles', 'describe', id, ...P, '--format=value(deleted)'], expect: { equals: '' } },
        k.cmd('iam', 'roles', 'undelete', id),
      ),
      k.step(
        `role-${f}-permissions`,
        `custom role ${id} holds exactly ${permissions.join(', ')}`,
        {
          args: ['iam', 'roles', 'describe', id, ...P, '--format=value(includedPermissions)'],
          expect: { equals: permissions.join(';') },
        },
        k.cmd('iam', 'roles', 'update', id, `--permissions=${permissions.join(',')}`),
      ),
    ];
  });
  return { steps: [...accountSteps, ...roleSteps, ...projectBindings(k)] };
}

/**
 * The Compute resource types whose names an IAM condition can test, with the deployment's own names
 * of each: instances of the managed roles (`<role>-<deployment>-…`), its groups and their
 * autoscalers (`<deployment>-<role>`, `<deployment>-<role>-<suffix>`), its templates. Names are as
 * https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name lists them for
 * compute.googleapis.com (`projects/P/zones/Z/instances/N`, …).
 */
function deploymentResources(k: Kit): Array<[type: string, prefixes: string[]]> {
  const { c, n } = k;
  const p = `projects/${c.project}`;
  const locations = [`${p}/regions/${c.region}`, ...c.zones.map((z) => `${p}/zones/${z}`)];
  const managed = roles.filter((r) => r !== 'consul');
  return [
    [
      'Instance',
      c.zones.flatMap((z) => managed.map((r) => `${p}/zones/${z}/instances/${n.baseInstanceName(r)}-`)),
    ],
    ['InstanceGroupManager', locations.map((l) => `${l}/instanceGroupManagers/${c.deployment}-`)],
    ['Autoscaler', locations.map((l) => `${l}/autoscalers/${c.deployment}-`)],
    ['InstanceTemplate', [`${p}/regions/${c.region}/instanceTemplates/${c.deployment}-`]],
  ];
}

/**
 * The condition on a function's custom role: on those four resource types, only the deployment's
 * own resources. The role's other permissions cannot be narrowed by name and pass: `list` is
 * checked on the project, operations carry no resource attributes, and Monitoring's
 * `timeSeries.create` is not a Compute resource. No commas: gcloud's `--condition` is a dict flag.
 */
export function computeCondition(k: Kit, f: TopicFunctionName) {
  const resources = deploymentResources(k);
  const type = (t: string) => `resource.type != "compute.googleapis.com/${t}"`;
  const names = resources.flatMap(([, prefixes]) => prefixes.map((x) => `resource.name.startsWith("${x}")`));
  return {
    title: `${k.c.deployment} ${f} own resources`,
    description: `${k.marker}: Compute rights of ${f} only on the deployment's instances groups autoscalers templates`,
    expression: `(${resources.map(([t]) => type(t)).join(' && ')}) || ${names.join(' || ')}`,
  };
}

/** Grants on the project's own IAM policy (the project is the command's argument: no `--project`). */
function projectBindings(k: Kit): Step[] {
  const { c, n } = k;
  const binding = (
    id: string,
    role: string,
    member: string,
    condition?: ReturnType<typeof computeCondition>,
  ): Step => ({
    ...k.step(id, `grant ${role} to ${member}${condition ? ` (condition: ${condition.title})` : ''}`, {
      ...k.hasBinding(['projects', 'get-iam-policy', c.project], role, member),
      ...(condition ? { expect: { binding: { role, member, condition: condition.title } } } : {}),
    }),
    run: [
      {
        args: [
          'projects',
          'add-iam-policy-binding',
          c.project,
          `--member=${member}`,
          `--role=${role}`,
          condition
            ? `--condition=expression=${condition.expression},title=${condition.title},description=${condition.description}`
            : '--condition=None',
        ],
      },
    ],
  });
  return [
    ...roles.flatMap((r) => [
      binding(`iam-${r}-logging`, 'roles/logging.logWriter', `serviceAccount:${n.roleSa(r)}`),
      binding(`iam-${r}-metrics`, 'roles/monitoring.metricWriter', `serviceAccount:${n.roleSa(r)}`),
    ]),
    ...c.functions.flatMap((f) => {
      const role = `projects/${c.project}/roles/${n.customRole(f)}`;
      const member = `serviceAccount:${n.fnSa(f)}`;
      return [
        binding(`iam-${f}-compute`, role, member, computeCondition(k, f)),
        // A deploy made before the condition granted the role whole: that grant goes, after the
        // conditional one is in place.
        {
          id: `iam-${f}-compute-unconditioned`,
          title: `drop an unconditional grant of ${role} to ${member}`,
          runWhen: 'check-passes' as const,
          check: {
            ...k.hasBinding(['projects', 'get-iam-policy', c.project], role, member),
            expect: { binding: { role, member, condition: null } },
          },
          run: [
            {
              args: [
                'projects',
                'remove-iam-policy-binding',
                c.project,
                `--member=${member}`,
                `--role=${role}`,
                '--condition=None',
              ],
            },
          ],
        },
      ];
    }),
    ...(c.functions.length > 0 ? functionPlatformBindings(k, binding) : []),
  ];
}

/**
 * What building and triggering the functions needs from the project. The build account: the roles
 * Google lists for a user-specified Cloud Build account of `gcloud functions deploy` (build logs,
 * images in Artifact Registry, the uploaded source), since projects made after mid-2024 may give the
 * default build account none of them:
 * https://cloud.google.com/functions/docs/securing/build-custom-sa . The deployer acts as it with
 * the project-level Service Account User role the README lists (as for `--service-account`).
 */
function functionPlatformBindings(
  k: Kit,
  binding: (id: string, role: string, member: string) => Step,
): Step[] {
  const build = `serviceAccount:${k.n.buildSa}`;
  const buildRoles: [string, string][] = [
    ['logging', 'roles/logging.logWriter'],
    ['artifacts', 'roles/artifactregistry.writer'],
    ['source', 'roles/storage.objectViewer'],
  ];
  // Eventarc's push subscriptions send an identity token Pub/Sub's agent mints: an agent made
  // before 2021-04-08 lacks the role that allows it. Teardown keeps this grant: it cannot tell
  // whether the deploy made it, and other push subscriptions of the project may need it.
  // https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
  return [
    ...buildRoles.map(([what, role]) => binding(`iam-build-${what}`, role, build)),
    {
      ...binding('iam-pubsub-agent-token-creator', 'roles/iam.serviceAccountTokenCreator', k.n.pubsubAgent),
      keepOnTeardown: 'Pub/Sub may need it for other push subscriptions of the project',
    },
  ];
}
