import { topicFunctions, type TopicFunctionName } from '../../functions/catalog';
import {
  applyOverrides,
  DeployConfigError,
  resolveConfig,
  type ResolvedConfig,
} from '../../infra-scripts/deploy/config';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseHealthSweepConfig } from '../../shared/health-sweep/config';
import { loadScalingAlertsConfig } from '../../shared/scaling-alerts/config';
import { matchIncident } from '../../shared/scaling-alerts/rules';
import { deployPlan, type Plan, type PlanInputs } from '../../infra-scripts/deploy/plan';
import { checkPasses, runPlan, show, type Exec } from '../../infra-scripts/deploy/runner';
import { envVarsFlag } from '../../infra-scripts/deploy/steps/functions';
import { hostAddress } from '../../infra-scripts/deploy/steps/names';
import { teardownPlan } from '../../infra-scripts/deploy/teardown';
import { agentPolicies } from './deploy.inputs';

const inputs: PlanInputs = {
  sourceHash: 'abc',
  agentPolicies,
  functionPolicies: {
    instanceEvents: 'node_prefix "backend-" { policy = "write" }',
    healthSweep: 'node_prefix "haproxy-" { policy = "write" }',
  },
  forceLeavePolicy: 'operator = "write"',
};
const all = ['instanceEvents', 'healthSweep', 'scalingAlerts'];
/** A config of these functions (unless `extra` lists its own). */
const config = (extra: Record<string, unknown> = {}, functions = ['instanceEvents']): ResolvedConfig =>
  resolveConfig({ project: 'demo-project', functions, ...extra });
const commands = (plan: Plan) => plan.steps.flatMap((s) => s.run.map((r) => r.args));
const line = (args: string[]) => args.join(' ');

describe('deploy config', () => {
  it('fills every default from the project alone', () => {
    const c = resolveConfig({ project: 'demo-project' });
    expect(c).toMatchObject({
      deployment: 'ilb',
      region: 'us-central1',
      zones: ['us-central1-a', 'us-central1-b', 'us-central1-c'],
      imageProject: 'demo-project',
      functions: all,
      consul: { servers: 3 },
      backend: { min: 2, max: 6 },
    });
  });

  it('rejects what it cannot deploy, naming the key', () => {
    expect(() => resolveConfig({})).toThrow(/project/);
    expect(() => config({ backend: { min: 5, max: 2 } })).toThrow(/min must not exceed max/);
    expect(() => config({ zones: ['europe-west1-b'] })).toThrow(/not in us-central1/);
    // Only the catalog's topic functions: an HTTP entry point comes with its function.
    expect(() => config({ functions: ['healthSweepHttp'] })).toThrow(/functions/);
    expect(() => config({ functions: ['otherFunction'] })).toThrow(/functions/);
    expect(() => config({ consul: { servers: 4 } })).toThrow(DeployConfigError);
    expect(() => config({ unknownKey: 1 })).toThrow(/unknownKey|Unrecognized/);
    // The operators' function: IAM members only, never everyone.
    for (const invoker of ['allUsers', 'allAuthenticatedUsers', 'ops@example.com', 'group:'])
      expect(() => config({ healthSweep: { invokers: [invoker] } })).toThrow(/invokers/);
    expect(() => config({ healthSweep: { httpIngress: 'public' } })).toThrow(/httpIngress/);
    // The sweep's thresholds are checked as the function will check them.
    expect(() =>
      config({ functions: ['healthSweep'], healthSweep: { thresholds: { absentSweeps: 0 } } }, all),
    ).toThrow(/healthSweep: .*absentSweeps/);
  });

  it("deploys the catalog's topic functions, or any subset the config lists", () => {
    expect(resolveConfig({ project: 'demo-project' }).functions).toEqual(all);
    expect(config({ functions: ['healthSweep'] }, all).functions).toEqual(['healthSweep']);
  });

  it('accepts its documented example', () => {
    const example: unknown = JSON.parse(
      readFileSync(path.join(__dirname, '../../infra-scripts/deploy/config.example.json'), 'utf8'),
    );
    expect(resolveConfig(example).healthSweep.invokers).toEqual(['group:ilb-operators@example.com']);
  });

  it("generates scalingAlerts' rules from the deployment, or takes a valid document or file", () => {
    const generated = config({ haproxy: { min: 3, max: 5 } }, all).scalingRules;
    expect(generated).toMatchObject({
      ownership: { namePrefixes: ['ilb-backend-', 'ilb-haproxy-'] },
      tiers: {
        backend: {
          floor: 2,
          ceiling: 6,
          autoscalers: [{ region: 'us-central1', name: '@{autoscaler-backend}' }],
        },
        haproxy: {
          floor: 3,
          ceiling: 5,
          autoscalers: [{ region: 'us-central1', name: '@{autoscaler-haproxy}' }],
        },
      },
      useDefaultRules: true,
    });
    // Without scalingAlerts, no rules.
    expect(config({ functions: ['healthSweep'] }, all).scalingRules).toBeUndefined();
    const own = {
      version: 1,
      ownership: { label: { key: 'deployment', value: 'ilb' } },
      tiers: {
        web: {
          autoscalers: [{ zone: 'us-central1-b', name: 'web-as' }],
          floor: 1,
          ceiling: 4,
          maxStep: 1,
          cooldownSec: 0,
          maxChangesPerHour: 4,
          lease: { defaultSec: 600, maxSec: 600 },
        },
      },
    };
    expect(config({ scalingRules: own }, all).scalingRules).toEqual(own);
    const read = jest.fn(() => JSON.stringify(own));
    expect(resolveConfig({ project: 'demo-project', scalingRules: 'rules.json' }, read).scalingRules).toEqual(
      own,
    );
    expect(read).toHaveBeenCalledWith('rules.json');
    // Checked as the function will check it, at plan time.
    expect(() =>
      config({ scalingRules: { ...own, tiers: { web: { ...own.tiers.web, floor: 9 } } } }, all),
    ).toThrow(/scalingRules: .*floor must not exceed ceiling/);
    expect(() => config({ scalingRules: { ...own, version: 2 } }, all)).toThrow(/scalingRules: .*version/);
    expect(() => config({ scalingRules: 'rules.json' }, all)).toThrow(/scalingRules: cannot read/);
    expect(() => resolveConfig({ project: 'demo-project', scalingRules: 'r' }, () => '[1]')).toThrow(
      /scalingRules: r: not a JSON object/,
    );
    expect(() => config({ scalingRules: { ...own, description: '@{projectNumber}' } }, all)).toThrow(
      /unknown placeholder @\{projectNumber\}/,
    );
    expect(() => config({ scalingRules: { ...own, description: 'a|b' } }, all)).toThrow(/"\|"/);
  });

  it('applies flags over the file', () => {
    const merged = applyOverrides(
      { project: 'p-from-file', backend: { min: 1 } },
      { project: 'flag-project', zones: 'us-central1-f' },
      ['backend.max=9', 'consul.machineType=e2-medium'],
    );
    expect(merged).toEqual({
      project: 'flag-project',
      zones: ['us-central1-f'],
      backend: { min: 1, max: 9 },
      consul: { machineType: 'e2-medium' },
    });
    expect(() => applyOverrides({}, {}, ['__proto__.x=1'])).toThrow(/invalid key/);
    expect(() => applyOverrides({}, {}, ['novalue'])).toThrow(/key.path=value/);
  });

  it('computes host addresses inside the range', () => {
    expect(hostAddress('10.10.0.0/20', 10)).toBe('10.10.0.10');
    expect(hostAddress('192.168.4.0/22', 300)).toBe('192.168.5.44');
    expect(() => hostAddress('10.0.0.0/30', 3)).toThrow(/outside/);
  });
});

describe('deploy plan', () => {
  const plan = deployPlan(config({}, all), inputs);
  const cmds = commands(plan);

  it('has unique step ids and passes --project to every command and check', () => {
    expect(new Set(plan.steps.map((s) => s.id)).size).toBe(plan.steps.length);
    for (const args of [...cmds, ...plan.steps.map((s) => s.check.args), ...Object.values(plan.lookups)]) {
      if (args[0] === 'projects') expect(args[2]).toBe('demo-project');
      else expect(line(args)).toContain('--project demo-project');
    }
  });

  it('grants nothing to allUsers or allAuthenticatedUsers and no primitive role', () => {
    for (const args of cmds) {
      expect(line(args)).not.toMatch(/allUsers|allAuthenticatedUsers/);
      expect(line(args)).not.toMatch(/roles\/(owner|editor|viewer)\b/);
    }
    expect(cmds.some((a) => a.includes('--allow-unauthenticated'))).toBe(false);
  });

  it('opens 0.0.0.0/0 only on the frontend public port; Consul HTTPS only from the functions egress', () => {
    const firewalls = cmds.filter((a) => line(a).startsWith('compute firewall-rules create'));
    const open = firewalls.filter((a) => a.some((x) => x.includes('0.0.0.0/0')));
    expect(open.map((a) => a[3])).toEqual(['ilb-frontend-public']);
    expect(open[0]).toContain('--allow=tcp:80');
    const https = firewalls.find((a) => a.includes('--allow=tcp:8501')) as string[];
    expect(https).toContain('--source-ranges=10.10.16.0/26');
    expect(https).toContain('--target-service-accounts=ilb-consul@demo-project.iam.gserviceaccount.com');
    for (const f of firewalls) {
      expect(
        f.some((x) => x.startsWith('--source-ranges=') || x.startsWith('--source-service-accounts=')),
      ).toBe(true);
    }
  });

  it('gives Consul servers fixed private addresses and no external IP', () => {
    const servers = cmds.filter((a) => line(a).startsWith('compute instances create'));
    expect(servers.map((a) => a[3])).toEqual(['consul-ilb-0', 'consul-ilb-1', 'consul-ilb-2']);
    for (const s of servers) {
      expect(s).toContain('--no-address');
      expect(s.some((x) => x.startsWith('--address'))).toBe(false);
      expect(s.find((x) => x.startsWith('--metadata='))).toContain(
        'consul-servers=10.10.0.10 10.10.0.11 10.10.0.12',
      );
    }
    // Spread over the zones.
    expect(servers.map((a) => a.find((x) => x.startsWith('--zone=')))).toEqual([
      '--zone=us-central1-a',
      '--zone=us-central1-b',
      '--zone=us-central1-c',
    ]);
  });

  it("passes the images' metadata contract, secrets by name", () => {
    const template = cmds.find((a) =>
      line(a).startsWith('compute instance-templates create ilb-backend-'),
    ) as string[];
    const md = template.find((x) => x.startsWith('--metadata=')) as string;
    for (const attr of [
      'consul-servers=',
      'consul-gossip-key-secret=consul-gossip-key',
      'consul-auth-audience=https://consul.ilb.internal/',
      'consul-default-token-secret=consul-agent-token-backend-default',
      'consul-ca-cert-secret=consul-ca-cert',
    ]) {
      expect(md).toContain(attr);
    }
    // No role write token on a client VM: it logs in with its identity token.
    expect(md).not.toContain('consul-agent-token-secret');
    const server = cmds.find((a) => line(a).startsWith('compute instances create')) as string[];
    expect(server.find((x) => x.startsWith('--metadata='))).toContain(
      'consul-initial-management-token-secret=consul-initial-management-token',
    );
    expect(template).toContain('--no-address');
    const frontend = cmds.find((a) =>
      line(a).startsWith('compute instance-templates create ilb-frontend-'),
    ) as string[];
    expect(frontend).toContain('--address=@{frontendIp}');
  });

  it('never puts a secret on a command line: generated values go to stdin', () => {
    const adds = plan.steps
      .flatMap((s) => s.run)
      .filter((r) => line(r.args).startsWith('secrets versions add'));
    expect(adds.length).toBeGreaterThan(10);
    for (const a of adds) {
      expect(a.args).toContain('--data-file=-');
      expect(a.stdin && 'secret' in a.stdin).toBe(true);
    }
  });

  it('labels what takes labels and marks the rest in its description', () => {
    for (const args of cmds) {
      const l = line(args);
      // A NAT takes neither: teardown knows it by its router.
      if (/ (create|deploy) /.test(` ${l} `) && !l.startsWith('compute routers nats')) {
        const labelled = args.some((x) =>
          /^--(labels|update-labels|user-labels)=.*app=gce-ilb-orchestrator,deployment=ilb/.test(x),
        );
        const described = args.includes('--description=gce-ilb-orchestrator deployment=ilb');
        const policy = args.some((x) => x.startsWith('--policy=') && x.includes('"deployment":"ilb"'));
        // The dashboard's JSON, labels included, is read from stdin.
        const stdin = plan.steps.flatMap((s) => s.run).find((r) => r.args === args)?.stdin;
        const config = stdin && 'script' in stdin && stdin.script.includes('"deployment": "ilb"');
        expect({ l, ok: labelled || described || policy || config }).toEqual({ l, ok: true });
      }
    }
  });

  it('deploys each function gen2 on nodejs22 with its own account, retries, internal ingress and the token from Secret Manager', () => {
    const deploys = cmds.filter(
      (a) =>
        line(a).startsWith('functions deploy') &&
        !['healthSweepHttp', 'healthSweepActHttp'].includes(a[2] as string),
    );
    expect(deploys.map((a) => a[2])).toEqual(all);
    for (const d of deploys) {
      const f = d[2] as TopicFunctionName;
      expect(d).toEqual(
        expect.arrayContaining([
          '--gen2',
          '--runtime=nodejs22',
          '--retry',
          `--trigger-topic=${topicFunctions[f].trigger.topic}`,
          '--ingress-settings=internal-only',
          '--no-allow-unauthenticated',
          `--service-account=ilb-fn-${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}@demo-project.iam.gserviceaccount.com`,
        ]),
      );
      expect(d.find((x) => x.startsWith('--set-env-vars='))).toContain(
        'CONSUL_HTTP_ADDR=https://10.10.0.10:8501',
      );
    }
    const ie = deploys[0] as string[];
    expect(ie.find((x) => x.startsWith('--set-secrets='))).toContain(
      'CONSUL_HTTP_TOKEN=consul-token-fn-instance-events:latest',
    );
    // ~64 events in flight at 500 events/s; the sweep never runs twice at once.
    expect(
      topicFunctions.instanceEvents.concurrency * topicFunctions.instanceEvents.maxInstances,
    ).toBeGreaterThanOrEqual(64);
    expect(deploys[1]).toContain('--max-instances=1');
    const egress = cmds.filter((a) => line(a).startsWith('run services update'));
    expect(
      egress.map(
        (a) => a.includes('--subnet=ilb-fn-egress') && a.includes('--vpc-egress=private-ranges-only'),
      ),
    ).toEqual([true, true, true, true, true]);
  });

  it('deploys healthSweepHttp next to healthSweep: HTTP, IAM invokers only (none by default), same account and tokens', () => {
    const http = cmds.find((a) => line(a).startsWith('functions deploy healthSweepHttp')) as string[];
    const sweep = cmds.find((a) => line(a).startsWith('functions deploy healthSweep ')) as string[];
    expect(http).toEqual(
      expect.arrayContaining([
        '--gen2',
        '--entry-point=healthSweepHttp',
        '--trigger-http',
        '--no-allow-unauthenticated',
        '--ingress-settings=internal-only',
        '--max-instances=1',
        '--service-account=ilb-fn-health-sweep@demo-project.iam.gserviceaccount.com',
      ]),
    );
    expect(http.some((x) => /^--(retry|trigger-topic|trigger-service-account)\b/.test(x))).toBe(false);
    const same = (a: string[], prefix: string) => a.find((x) => x.startsWith(prefix));
    expect(same(http, '--set-secrets=')).toBe(same(sweep, '--set-secrets='));
    expect(same(http, '--set-env-vars=')).toBe(same(sweep, '--set-env-vars='));
    // Nobody may call it until the config names operators.
    const invokers = (p: Plan) =>
      commands(p).filter((a) => line(a).startsWith('functions add-invoker-policy-binding healthSweepHttp'));
    expect(invokers(plan)).toEqual([]);
    const withOps = deployPlan(
      config(
        { healthSweep: { invokers: ['group:sre@example.com', 'user:ana@example.com'], httpIngress: 'all' } },
        all,
      ),
      inputs,
    );
    expect(invokers(withOps).map((a) => a.find((x) => x.startsWith('--member=')))).toEqual([
      '--member=group:sre@example.com',
      '--member=user:ana@example.com',
    ]);
    const opened = commands(withOps).find((a) => line(a).startsWith('functions deploy healthSweepHttp'));
    expect(opened).toContain('--ingress-settings=all');
    expect(opened).toContain('--no-allow-unauthenticated');
    // Without healthSweep, no HTTP entry point either.
    const noSweep = commands(deployPlan(config({}, ['instanceEvents', 'scalingAlerts']), inputs)).map(line);
    expect(noSweep.some((l) => l.includes('healthSweepHttp'))).toBe(false);
  });

  it('deploys healthSweepActHttp beside it, invoked only by actInvokers (granted apart from the report invokers)', () => {
    const act = cmds.find((a) => line(a).startsWith('functions deploy healthSweepActHttp')) as string[];
    expect(act).toEqual(
      expect.arrayContaining([
        '--entry-point=healthSweepActHttp',
        '--trigger-http',
        '--no-allow-unauthenticated',
      ]),
    );
    const members = (p: Plan, entry: string) =>
      commands(p)
        .filter((a) => line(a).startsWith(`functions add-invoker-policy-binding ${entry} `))
        .map((a) => a.find((x) => x.startsWith('--member=')));
    expect(members(plan, 'healthSweepActHttp')).toEqual([]);
    const withOps = deployPlan(
      config(
        { healthSweep: { invokers: ['group:sre@example.com'], actInvokers: ['group:oncall@example.com'] } },
        all,
      ),
      inputs,
    );
    expect(members(withOps, 'healthSweepHttp')).toEqual(['--member=group:sre@example.com']);
    expect(members(withOps, 'healthSweepActHttp')).toEqual(['--member=group:oncall@example.com']);
  });

  it("gives healthSweep the deployment's groups as HEALTH_SWEEP_CONFIG_JSON, in gcloud's alternate delimiter syntax", () => {
    const sweep = cmds.find((a) => line(a).startsWith('functions deploy healthSweep ')) as string[];
    const flag = sweep.find((x) => x.startsWith('--set-env-vars=')) as string;
    expect(flag.startsWith('--set-env-vars=^|^')).toBe(true);
    const env = Object.fromEntries(
      flag
        .slice('--set-env-vars=^|^'.length)
        .split('|')
        .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
    );
    expect(env.CONSUL_HTTP_ADDR).toBe('https://10.10.0.10:8501');
    const parsed = parseHealthSweepConfig(JSON.parse(env.HEALTH_SWEEP_CONFIG_JSON as string));
    expect(parsed.groups.map((g) => [g.name, g.role])).toEqual([
      ['ilb-backend', 'backend'],
      ['ilb-haproxy', 'haproxy'],
      ['ilb-frontend', 'frontend'],
    ]);
    // The other functions keep the plain form.
    const ie = cmds.find((a) => line(a).startsWith('functions deploy instanceEvents')) as string[];
    expect(ie.find((x) => x.startsWith('--set-env-vars='))).not.toContain('HEALTH_SWEEP_CONFIG_JSON');
    expect(envVarsFlag({ A: '1', B: '2' })).toBe('--set-env-vars=A=1,B=2');
    expect(() => envVarsFlag({ A: '1,2', B: 'x|y' })).toThrow(/, and \|/);
  });

  it('gives scalingAlerts and healthSweep the rules as SCALING_RULES_JSON, naming the autoscalers gcloud made', () => {
    const envOf = (plan: Plan, f: string) => {
      const flag = (
        commands(plan).find((a) => line(a).startsWith(`functions deploy ${f} `)) as string[]
      ).find((x) => x.startsWith('--set-env-vars=')) as string;
      return Object.fromEntries(
        flag
          .replace(/^--set-env-vars=(\^\|\^)?/, '')
          .split(flag.startsWith('--set-env-vars=^|^') ? '|' : ',')
          .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
      );
    };
    for (const f of ['scalingAlerts', 'healthSweep', 'healthSweepHttp']) {
      const text = envOf(plan, f).SCALING_RULES_JSON as string;
      // What the runner does with the lookups before the command runs.
      const resolved = text.replace(/@\{autoscaler-(\w+)\}/g, (_, role: string) => `ilb-${role}-ab12`);
      const { rules } = loadScalingAlertsConfig({ SCALING_RULES_JSON: resolved });
      expect(Object.values(rules.tiers).map((t) => t.autoscalers[0]?.name)).toEqual([
        'ilb-backend-ab12',
        'ilb-haproxy-ab12',
      ]);
    }
    expect(plan.lookups['autoscaler-backend']).toEqual([
      'compute',
      'instance-groups',
      'managed',
      'describe',
      'ilb-backend',
      '--region=us-central1',
      '--project',
      'demo-project',
      '--format=value(status.autoscaler.basename())',
    ]);
    // The lookups run after the autoscalers exist.
    const ids = plan.steps.map((s) => s.id);
    expect(ids.indexOf('autoscaler-haproxy')).toBeLessThan(ids.indexOf('function-scalingAlerts'));
    expect(ids.indexOf('autoscaler-haproxy')).toBeLessThan(ids.indexOf('function-healthSweep'));
    expect(envOf(plan, 'instanceEvents')).not.toHaveProperty('SCALING_RULES_JSON');
    // The deploy's own CPU policies match a rule that raises their tier's floor.
    const { rules } = loadScalingAlertsConfig({
      SCALING_RULES_JSON: (envOf(plan, 'scalingAlerts').SCALING_RULES_JSON as string).replace(
        /@\{autoscaler-(\w+)\}/g,
        (_, role: string) => `ilb-${role}-ab12`,
      ),
    });
    for (const role of ['backend', 'haproxy']) {
      const create = cmds.find(
        (a) =>
          line(a).startsWith('alpha monitoring policies create') &&
          line(a).includes(`"displayName":"ilb ${role} CPU high"`),
      ) as string[];
      const policy = JSON.parse((create.find((x) => x.startsWith('--policy=')) as string).slice(9)) as {
        displayName: string;
        userLabels: Record<string, string>;
      };
      const incident = {
        id: 'i-1',
        state: 'open' as const,
        cancelled: false,
        policyName: policy.displayName,
        userLabels: policy.userLabels,
        metricLabels: {},
        resourceType: 'gce_instance',
        resourceLabels: { zone: 'us-central1-b' },
        startedAt: 0,
        time: 0,
      };
      expect(matchIncident(incident, rules)).toMatchObject({
        ok: true,
        target: {
          tierName: role,
          change: { type: 'raise-min', by: 2 },
          autoscalers: [{ name: `ilb-${role}-ab12` }],
        },
      });
    }
    // healthSweep without scalingAlerts runs no lease pass: no rules, no autoscaler permissions.
    const alone = deployPlan(config({ functions: ['healthSweep'] }, all), inputs);
    expect(envOf(alone, 'healthSweep')).not.toHaveProperty('SCALING_RULES_JSON');
    expect(alone.lookups).not.toHaveProperty('autoscaler-backend');
    const roleOf = (p: Plan, f: string) =>
      (commands(p).find((a) => line(a).startsWith(`iam roles create ilb_${f} `)) as string[])
        .find((x) => x.startsWith('--permissions='))
        ?.slice('--permissions='.length)
        .split(',');
    const sweep = topicFunctions.healthSweep;
    expect(roleOf(alone, 'healthSweep')).toEqual([...sweep.permissions].sort());
    expect(roleOf(plan, 'healthSweep')).toEqual(
      [...new Set([...sweep.permissions, ...sweep.leasePassPermissions])].sort(),
    );
    expect(roleOf(plan, 'healthSweep')).toEqual(expect.arrayContaining(['compute.autoscalers.update']));
    expect(roleOf(plan, 'scalingAlerts')).toEqual([...topicFunctions.scalingAlerts.permissions].sort());
  });

  it('gives the force-leave token to instanceEvents alone, read only by it and the servers', () => {
    const secretsOf = (f: string) =>
      (cmds.find((a) => line(a).startsWith(`functions deploy ${f} `)) as string[]).find((x) =>
        x.startsWith('--set-secrets='),
      ) as string;
    expect(secretsOf('instanceEvents')).toContain(
      'CONSUL_FORCE_LEAVE_TOKEN=consul-token-fn-instance-events-force-leave:latest',
    );
    for (const f of ['healthSweep', 'healthSweepHttp', 'healthSweepActHttp', 'scalingAlerts'])
      expect(secretsOf(f)).not.toContain('FORCE_LEAVE');
    const secret = 'consul-token-fn-instance-events-force-leave';
    expect(cmds.some((a) => line(a).startsWith(`secrets create ${secret} `))).toBe(true);
    const readers = cmds
      .filter((a) => line(a).startsWith(`secrets add-iam-policy-binding ${secret} `))
      .map((a) => a.find((x) => x.startsWith('--member=')));
    expect(readers.sort()).toEqual(
      [
        '--member=serviceAccount:ilb-fn-instance-events@demo-project.iam.gserviceaccount.com',
        '--member=serviceAccount:ilb-consul@demo-project.iam.gserviceaccount.com',
      ].sort(),
    );
    expect(cmds.map(line).join('\n')).not.toContain('consul-token-fn-health-sweep-force-leave');
    // One force-leave policy in Consul, one token.
    const acl = plan.steps.find((s) => s.id === 'consul-acl')?.run[0]?.stdin as { script: string };
    expect(acl.script.match(/^policy fn-force-leave /gm)).toHaveLength(1);
    expect(acl.script.match(/^token consul-token-fn-[a-z-]+-force-leave fn-force-leave /gm)).toHaveLength(1);
    // Without the policy file: no force-leave token at all.
    const { forceLeavePolicy: _none, ...without } = inputs;
    expect(
      commands(deployPlan(config({}, all), without))
        .map(line)
        .join('\n'),
    ).not.toContain('force-leave');
  });

  it("binds each function's custom role with a condition: Compute rights on the deployment's own resources", () => {
    const grant = (f: string) =>
      cmds.find(
        (a) =>
          line(a).startsWith('projects add-iam-policy-binding') &&
          a.includes(`--role=projects/demo-project/roles/ilb_${f}`),
      ) as string[];
    for (const f of all) {
      const condition = grant(f).find((x) => x.startsWith('--condition=')) as string;
      expect(condition).toMatch(
        new RegExp(`^--condition=expression=.*,title=ilb ${f} own resources,description=`),
      );
      // gcloud's dict flag splits on commas: only the two separators.
      expect(condition.split(',')).toHaveLength(3);
      expect(condition).toContain('resource.name.startsWith("projects/demo-project/zones/');
      expect(condition).toContain('/instances/backend-ilb-")');
      expect(condition).toContain('/instanceGroupManagers/ilb-")');
      expect(condition).toContain('resource.type != "compute.googleapis.com/Instance"');
      const step = plan.steps.find((s) => s.id === `iam-${f}-compute`);
      expect(step?.check.expect).toEqual({
        binding: expect.objectContaining({ condition: `ilb ${f} own resources` }),
      });
    }
    // A grant of a deploy made before the condition is removed once the conditional one exists.
    const role = 'projects/demo-project/roles/ilb_healthSweep';
    const member = 'serviceAccount:ilb-fn-health-sweep@demo-project.iam.gserviceaccount.com';
    const drop = plan.steps.find((s) => s.id === 'iam-healthSweep-compute-unconditioned');
    expect(drop?.runWhen).toBe('check-passes');
    expect(line(drop?.run[0]?.args ?? [])).toContain('remove-iam-policy-binding demo-project');
    const policy = (bindings: unknown[]) => JSON.stringify({ bindings });
    const conditioned = { role, members: [member], condition: { title: 'ilb healthSweep own resources' } };
    const whole = { role, members: [member] };
    const add = plan.steps.find((s) => s.id === 'iam-healthSweep-compute');
    expect(checkPasses(add!.check, 0, policy([whole]))).toBe(false);
    expect(checkPasses(add!.check, 0, policy([conditioned]))).toBe(true);
    expect(checkPasses(drop!.check, 0, policy([conditioned]))).toBe(false);
    expect(checkPasses(drop!.check, 0, policy([conditioned, whole]))).toBe(true);
    // The VMs' grants stay unconditional (Logging and Monitoring have no resource names to test).
    expect(plan.steps.find((s) => s.id === 'iam-backend-logging')?.run[0]?.args).toContain(
      '--condition=None',
    );
  });

  it('routes audit activity and system events of the watched instances, and lets the sink publish', () => {
    const sink = cmds.find((a) => line(a).startsWith('logging sinks create')) as string[];
    const filter = sink.find((x) => x.startsWith('--log-filter=')) as string;
    expect(filter).toContain('cloudaudit.googleapis.com%2Factivity');
    expect(filter).toContain('cloudaudit.googleapis.com%2Fsystem_event');
    expect(filter).toContain('/instances/backend-ilb-');
    expect(
      cmds.some((a) => a.includes('--member=@{sinkWriter}') && a.includes('--role=roles/pubsub.publisher')),
    ).toBe(true);
  });

  it('wires scaling-alerts: channel, the notification agent may publish, policies notify on open and close', () => {
    const agent = cmds.find((a) => a.some((x) => x.includes('gcp-sa-monitoring-notification')));
    expect(agent).toEqual(expect.arrayContaining(['scaling-alerts', '--role=roles/pubsub.publisher']));
    const policies = cmds.filter(
      (a) => line(a).startsWith('alpha monitoring policies create') && line(a).includes('CPU high'),
    );
    expect(policies).toHaveLength(2);
    for (const p of policies) {
      const json = JSON.parse((p.find((x) => x.startsWith('--policy=')) as string).slice('--policy='.length));
      expect(json.alertStrategy.notificationPrompts).toEqual(['OPENED', 'CLOSED']);
      expect(json.notificationChannels).toEqual(['@{channel}']);
    }
    expect(cmds.some((a) => line(a).startsWith('scheduler jobs create pubsub ilb-health-sweep'))).toBe(true);
  });

  it('dead-letters every function subscription and keeps the dead letters', () => {
    for (const topic of ['instance-events', 'health-sweep', 'scaling-alerts']) {
      expect(
        cmds.some(
          (a) =>
            line(a) ===
            `pubsub topics create ${topic}-dead-letter --labels=app=gce-ilb-orchestrator,deployment=ilb --project demo-project`,
        ),
      ).toBe(true);
      expect(cmds.some((a) => a.includes(`--dead-letter-topic=${topic}-dead-letter`))).toBe(true);
    }
  });

  it('only deploys what exists: without healthSweep and scalingAlerts, none of their parts', () => {
    const one = commands(deployPlan(config(), inputs)).map(line);
    expect(one.filter((l) => l.startsWith('functions deploy'))).toHaveLength(1);
    expect(one.some((l) => /health-sweep|scaling-alerts|monitoring (channels|policies)/.test(l))).toBe(false);
  });

  it('names a new instance template when its content changes, and rolls it out', () => {
    const a = commands(deployPlan(config(), inputs)).find((x) =>
      line(x).startsWith('compute instance-templates create ilb-backend-'),
    );
    const b = commands(deployPlan(config({ backend: { machineType: 'e2-medium' } }), inputs)).find((x) =>
      line(x).startsWith('compute instance-templates create ilb-backend-'),
    );
    expect(a?.[3]).not.toBe(b?.[3]);
    expect(
      commands(deployPlan(config(), inputs)).some((x) => x.includes(`--version=template=${a?.[3]}`)),
    ).toBe(true);
  });
});

describe('teardown plan', () => {
  const c = config({}, all);
  const deploy = deployPlan(c, inputs);
  const teardown = teardownPlan(c, inputs);

  it('deletes in the reverse order of creation, only what carries the deployment', () => {
    const created = commands(deploy)
      .filter((a) => / (create|deploy) /.test(` ${line(a)} `))
      .map((a) => a.slice(0, 2).join(' '));
    const deleted = commands(teardown).map((a) => a.slice(0, 2).join(' '));
    expect(deleted[0]).toBe('functions delete');
    expect(deleted[deleted.length - 1]).toBe('compute networks');
    expect(created.length).toBeGreaterThan(0);
    for (const s of teardown.steps) {
      expect(s.runWhen).toBe('check-passes');
      const l = line(s.check.args);
      expect(/deployment|binding|--filter|labels/.test(`${l} ${JSON.stringify(s.check.expect)}`)).toBe(true);
    }
    // Project-level grants are removed (they would outlive the accounts), except the Pub/Sub
    // agent's token creator grant, which other push subscriptions of the project may need.
    const granted = commands(deploy).filter((a) => a[0] === 'projects' && a[1] === 'add-iam-policy-binding');
    const removed = commands(teardown).filter((a) => a[1] === 'remove-iam-policy-binding');
    expect(removed.map((a) => a.slice(3, 5).join(' ')).sort()).toEqual(
      granted
        .map((a) => a.slice(3, 5).join(' '))
        .filter((x) => !x.includes('roles/iam.serviceAccountTokenCreator'))
        .sort(),
    );
    expect(removed).toHaveLength(granted.length - 1);
  });
});

describe('runner', () => {
  const c = config();
  const plan = deployPlan(c, inputs);
  const generators = {
    gossipKey: () => 'GOSSIP',
    uuid: () => 'UUID',
    tls: async () => ({ 'ca-cert': 'C', 'ca-key': 'K', 'server-cert': 'S', 'server-key': 'SK' }),
  };

  it('dry run prints every step and command and runs nothing', async () => {
    const exec = jest.fn<ReturnType<Exec>, Parameters<Exec>>();
    const lines: string[] = [];
    const r = await runPlan(plan, { exec, generators, log: (l) => lines.push(l), dryRun: true, rerun: 'x' });
    expect(r).toEqual({ ok: true, ran: 0, skipped: plan.steps.length });
    expect(exec).not.toHaveBeenCalled();
    expect(lines.filter((l) => /^step \d+ of \d+:/.test(l))).toHaveLength(plan.steps.length);
    expect(lines.join('\n')).toContain(show(commands(plan)[0] as string[]));
  });

  it('stops at a failure with the command and how to resume', async () => {
    const exec: Exec = async (args) =>
      args.includes('create') && args.includes('compute') && args.includes('routers')
        ? { code: 1, stdout: '', stderr: 'ERROR: quota' }
        : {
            code:
              args.includes('describe') || args.includes('list') || args.includes('get-iam-policy') ? 1 : 0,
            stdout: '',
            stderr: '',
          };
    const lines: string[] = [];
    const r = await runPlan(plan, {
      exec,
      generators,
      log: (l) => lines.push(l),
      rerun: 'infra-scripts/deploy.sh --project demo-project',
    });
    expect(r).toMatchObject({ ok: false, step: 4, error: 'ERROR: quota' });
    expect(lines.join('\n')).toMatch(
      /step 4 of \d+ failed: Cloud Router ilb-router\n {2}command: gcloud compute routers create ilb-router/,
    );
    expect(lines.join('\n')).toContain('run again to resume');
  });

  it('evaluates checks', () => {
    const b = { role: 'roles/x', member: 'serviceAccount:a' };
    expect(
      checkPasses(
        { args: [], expect: { binding: b } },
        0,
        JSON.stringify({ bindings: [{ role: 'roles/x', members: ['serviceAccount:a'] }] }),
      ),
    ).toBe(true);
    expect(
      checkPasses(
        { args: [], expect: { binding: b } },
        0,
        JSON.stringify({ bindings: [{ role: 'roles/y', members: ['serviceAccount:a'] }] }),
      ),
    ).toBe(false);
    expect(checkPasses({ args: [], expect: 'exists' }, 1, 'x')).toBe(false);
    expect(checkPasses({ args: [], expect: 'nonEmpty' }, 0, ' \n')).toBe(false);
    expect(checkPasses({ args: [], expect: { equals: 'h' } }, 0, 'h\n')).toBe(true);
  });
});
