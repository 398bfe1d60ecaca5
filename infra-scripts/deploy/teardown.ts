import type { ResolvedConfig } from './config';
import { deployPlan, type Check, type Plan, type PlanInputs, type Step } from './plan';
import { APP_LABEL, names } from './steps/names';

/** What a deploy step made, read from its first command: `<group> <verb> [type] <name> … <scope>`. */
interface Made {
  step: Step;
  group: string[];
  name: string;
  /** The flags that place it (`--region=`, `--zone=`, `--location=`, `--router=`). */
  scope: string[];
}

interface Teardown {
  c: ResolvedConfig;
  P: string[];
  marker: string;
  lookups: Record<string, string[]>;
  /** A teardown step: its command runs when the check passes (the resource is there and ours). */
  del(made: Made, check: Check, ...args: string[]): Step;
  byLabel(...args: string[]): Check;
  byDescription(...args: string[]): Check;
}

/** Groups deleted as they were created, found by their `deployment` label or their description. */
const foundBy: Record<string, 'label' | 'description'> = {
  functions: 'label',
  'scheduler jobs': 'description',
  'logging sinks': 'description',
  'pubsub topics': 'label',
  'pubsub subscriptions': 'label',
  secrets: 'label',
  'compute instance-groups managed': 'description',
  'compute health-checks': 'description',
  'compute addresses': 'description',
  'compute firewall-rules': 'description',
  'compute routers': 'description',
  'compute networks subnets': 'description',
  'compute networks': 'description',
  'compute instances': 'label',
};

/** Groups that need more than a describe and a delete. */
const special: Record<string, (t: Teardown, m: Made) => Step> = {
  'alpha monitoring policies': (t, m) => deleteFoundByCheck(t, m, 'policy'),
  'monitoring dashboards': (t, m) => deleteFoundByCheck(t, m, 'dashboard'),
  'beta monitoring channels': (t, m) => deleteListed(t, m, 'channel', ['--force']),
  'compute instance-templates': (t, m) => {
    // Every template the deployment ever made (earlier configurations left theirs too).
    const role = m.step.id.replace('template-', '');
    const lookup = `templates-${m.step.id}`;
    t.lookups[lookup] = [
      'compute',
      'instance-templates',
      'list',
      `--filter=name~^${t.c.deployment}-${role}- AND description="${t.marker}"`,
      ...t.P,
      '--format=value(name)',
    ];
    return { ...deleteListed(t, m, lookup), title: `delete instance templates of ${role}` };
  },
  // A NAT has no description of its own: its router's says whose it is.
  'compute routers nats': (t, m) =>
    t.del(
      m,
      t.byDescription('compute', 'routers', 'describe', names(t.c).router, `--region=${t.c.region}`),
      ...m.group,
      'delete',
      m.name,
      ...m.scope,
    ),
  // A deleted custom role stays 7 days and `describe` still finds it: only one not deleted is ours
  // to delete (`deleted` prints nothing unless true).
  'iam roles': (t, m) =>
    t.del(
      m,
      {
        args: [...m.group, 'describe', m.name, ...t.P, '--format=value(description,deleted)'],
        expect: { equals: t.marker },
      },
      ...m.group,
      'delete',
      m.name,
    ),
  'iam service-accounts': (t, m) => {
    const email = `${m.name}@${t.c.project}.iam.gserviceaccount.com`;
    return t.del(m, t.byDescription(...m.group, 'describe', email), ...m.group, 'delete', email);
  },
};

/** Deletes what the deploy step's own check lists (policies, dashboards: found by display name). */
function deleteFoundByCheck(t: Teardown, m: Made, kind: string): Step {
  const lookup = `${kind}-${m.step.id}`;
  t.lookups[lookup] = m.step.check.args;
  return deleteListed(t, m, lookup);
}

/** Deletes what the lookup lists, when it lists anything. */
function deleteListed(t: Teardown, m: Made, lookup: string, flags: string[] = []): Step {
  return {
    id: `delete-${m.step.id}`,
    title: `delete ${m.step.title}`,
    runWhen: 'check-passes',
    check: { args: t.lookups[lookup] as string[], expect: 'nonEmpty' },
    run: [{ args: [...m.group, 'delete', `@{${lookup}}`, ...flags, ...t.P, '--quiet'] }],
  };
}

/** The step undoing a deploy step: delete what it made, or remove its project-level grant. */
function undo(t: Teardown, step: Step): Step[] {
  const { c } = t;
  if (step.keepOnTeardown) return [];
  const a = step.run[0]?.args ?? [];
  const verbAt = a.findIndex((x) => x === 'create' || x === 'deploy' || x === 'add-iam-policy-binding');
  const group = a.slice(0, verbAt);
  const verb = a[verbAt];
  const rest = a.slice(verbAt + 1).filter((x) => x !== '--project' && x !== c.project);
  const key = group.join(' ');
  if (verb === 'add-iam-policy-binding' && key === 'projects') {
    const member = rest.find((x) => x.startsWith('--member=')) as string;
    const role = rest.find((x) => x.startsWith('--role=')) as string;
    // A conditional binding is removed by its own condition.
    const condition = rest.find((x) => x.startsWith('--condition=')) ?? '--condition=None';
    const remove = ['projects', 'remove-iam-policy-binding', c.project, member, role, condition, '--quiet'];
    return [
      {
        id: `remove-${step.id}`,
        title: `remove ${step.title.replace(/^grant /, '')}`,
        runWhen: 'check-passes',
        check: step.check,
        run: [{ args: remove }],
      },
    ];
  }
  if (verb !== 'create' && verb !== 'deploy') return [];
  // `health-checks create http NAME` and `scheduler jobs create pubsub NAME` name a type first.
  const typed = ['compute health-checks', 'scheduler jobs'].includes(key);
  const made: Made = {
    step,
    group,
    name: rest[typed ? 1 : 0] as string,
    scope: rest.filter((x) => /^--(region|zone|location|router)=/.test(x)),
  };
  const by = foundBy[key];
  if (by) {
    const describe = [...group, 'describe', made.name, ...made.scope];
    const check = by === 'label' ? t.byLabel(...describe) : t.byDescription(...describe);
    return [t.del(made, check, ...group, 'delete', made.name, ...made.scope)];
  }
  const deleter = special[key];
  if (!deleter) throw new Error(`teardown: no delete for ${key}`);
  return [deleter(t, made)];
}

/**
 * Teardown: the deploy's resources in reverse order, each deleted only when it exists and carries
 * this deployment's label or description (IAM bindings go with their resource, except the
 * project's, which are removed).
 */
export function teardownPlan(c: ResolvedConfig, inputs: PlanInputs): Plan {
  const P = ['--project', c.project];
  const marker = `${APP_LABEL} deployment=${c.deployment}`;
  const deploy = deployPlan(c, inputs);
  const t: Teardown = {
    c,
    P,
    marker,
    lookups: { ...deploy.lookups },
    del: (made, check, ...args) => ({
      id: `delete-${made.step.id}`,
      title: `delete ${made.step.title}`,
      runWhen: 'check-passes',
      check,
      run: [{ args: [...args, ...P, '--quiet'] }],
    }),
    byLabel: (...args) => ({
      args: [...args, ...P, '--format=value(labels.deployment)'],
      expect: { equals: c.deployment },
    }),
    byDescription: (...args) => ({
      args: [...args, ...P, '--format=value(description)'],
      expect: { equals: marker },
    }),
  };
  const steps = [...deploy.steps].reverse().flatMap((step) => undo(t, step));
  return { steps: waitForEgressAddresses(c, steps), lookups: t.lookups };
}

/**
 * Cloud Run keeps the functions' Direct VPC egress addresses (`serverless-ipv4-…`) in their subnet
 * for 1–2 hours after they are deleted, and Compute refuses to delete the subnet meanwhile
 * ("… is already being used by '…/addresses/serverless-ipv4-…'"): the subnet, and the network it
 * is in, are left for a later teardown.
 * https://cloud.google.com/run/docs/configuring/vpc-direct-vpc#delete-subnet
 */
function waitForEgressAddresses(c: ResolvedConfig, steps: Step[]): Step[] {
  const subnet = `delete-subnet-${names(c).fnSubnet}`;
  return steps.map((s) => {
    if (s.id === subnet) {
      return {
        ...s,
        later: {
          error: "used by '?\\S*/addresses/serverless-ipv[46]-",
          why: "Cloud Run keeps the functions' egress addresses in it for 1-2 hours after they are deleted",
        },
      };
    }
    return s.id === 'delete-network' ? { ...s, after: subnet } : s;
  });
}
