/**
 * The stand-in API modules against the real gcloud: the deploy's own commands (from the golden dry
 * run of `deploy.sh` and `teardown.sh`) create, read twice, update and delete through each module,
 * and nothing gcloud sent goes unserved. gcloud runs as a child process, never synchronously, since
 * the stand-in answers from this process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { allApiModules, standInProxyEnvironment } from '../rehearsal/apis';
import type { ApiModule } from '../rehearsal/contract';
import { gcloudEnvironment, startStandIn, type StandIn } from '../rehearsal/server';

const project = 'demo-project';
const projectNumber = '123456789012';
const sa = (id: string) => `${id}@${project}.iam.gserviceaccount.com`;
const P = ['--project', project];
const region = '--region=us-central1';
const policyList = [
  'alpha',
  'monitoring',
  'policies',
  'list',
  '--filter=displayName="ilb backend CPU high"',
  ...P,
  '--format=value(name)',
];
const channelList = [
  'beta',
  'monitoring',
  'channels',
  'list',
  '--filter=displayName="ilb scaling-alerts"',
  ...P,
  '--format=value(name)',
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let standIn: StandIn;
let modules: ApiModule[];
let env: Record<string, string>;
let configDir: string;

function gcloud(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('gcloud', args, { env: { ...process.env, ...env }, cwd: process.cwd() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: stdout.trim(), stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** Runs a command that must succeed; its stdout. */
async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await gcloud(args, stdin);
  if (r.code !== 0) throw new Error(`gcloud ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

const roleField = (fields: string) =>
  ok(['iam', 'roles', 'describe', 'ilb_instanceEvents', ...P, `--format=value(${fields})`]);
const inventory = (name: string) => modules.find((m) => m.name === name)?.inventory() ?? [];

beforeAll(async () => {
  modules = allApiModules({ project, projectNumber });
  standIn = await startStandIn(modules);
  configDir = mkdtempSync(join(tmpdir(), 'rehearsal-gcloud-'));
  const endpoints = Object.fromEntries(modules.map((m) => [m.name, standIn.endpoint(m.name)]));
  env = { ...gcloudEnvironment(configDir, project, endpoints), ...standInProxyEnvironment(standIn) };
});

afterAll(async () => {
  // Requests per API for the report of the rehearsal.
  const perApi: Record<string, number> = {};
  for (const e of standIn.journal) perApi[e.api] = (perApi[e.api] ?? 0) + 1;
  process.stdout.write(`stand-in requests per API: ${JSON.stringify(perApi)}\n`);
  await standIn.stop();
  rmSync(configDir, { recursive: true, force: true });
});

afterEach(() => {
  expect(standIn.journal.filter((e) => e.unserved)).toEqual([]);
});

const describeText = (r: Run) => `${r.code}: ${r.stderr}`;

// Each gcloud call takes 1-3 s on a shared machine; a test runs up to a dozen, some in parallel.
jest.setTimeout(300_000);

describe('stand-in APIs under the real gcloud', () => {
  it('iam: service accounts and custom roles, with soft delete and undelete', async () => {
    await Promise.all(
      ['ilb-consul', 'ilb-fn-build', 'ilb-fn-instance-events'].map((id) =>
        ok([
          'iam',
          'service-accounts',
          'create',
          id,
          `--display-name=ilb ${id}`,
          '--description=gce-ilb-orchestrator deployment=ilb',
          ...P,
        ]),
      ),
    );
    await ok([
      'iam',
      'roles',
      'create',
      'ilb_instanceEvents',
      '--title=ilb instanceEvents',
      '--description=gce-ilb-orchestrator deployment=ilb',
      '--permissions=compute.instances.get',
      '--stage=GA',
      ...P,
    ]);
    const [email, again, deleted] = await Promise.all([
      ok(['iam', 'service-accounts', 'describe', sa('ilb-consul'), ...P, '--format=value(email)']),
      gcloud(['iam', 'service-accounts', 'create', 'ilb-consul', ...P]),
      roleField('deleted'),
    ]);
    expect(email).toBe(sa('ilb-consul'));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists/i);
    expect(deleted).toBe('');
    await ok([
      'iam',
      'roles',
      'update',
      'ilb_instanceEvents',
      '--permissions=compute.instances.get,compute.zoneOperations.get',
      ...P,
    ]);
    expect(await roleField('includedPermissions')).toBe('compute.instances.get;compute.zoneOperations.get');
    await ok(['iam', 'roles', 'delete', 'ilb_instanceEvents', ...P, '--quiet']);
    expect(await roleField('description,deleted')).toBe('gce-ilb-orchestrator deployment=ilb\tTrue');
    expect(inventory('iam').filter((i) => i.kind === 'role')).toEqual([]);
    await ok(['iam', 'roles', 'undelete', 'ilb_instanceEvents', ...P]);
    expect(await roleField('deleted')).toBe('');
  });

  it('cloudresourcemanager: project number and bindings, checked against IAM', async () => {
    expect(await ok(['projects', 'describe', project, '--format=value(projectNumber)'])).toBe(projectNumber);
    await ok([
      'projects',
      'add-iam-policy-binding',
      project,
      `--member=serviceAccount:${sa('ilb-consul')}`,
      '--role=roles/logging.logWriter',
      '--condition=None',
    ]);
    await ok([
      'projects',
      'add-iam-policy-binding',
      project,
      `--member=serviceAccount:${sa('ilb-fn-instance-events')}`,
      `--role=projects/${project}/roles/ilb_instanceEvents`,
      '--condition=None',
    ]);
    const policy = JSON.parse(await ok(['projects', 'get-iam-policy', project, ...P, '--format=json'])) as {
      bindings: { role: string; members: string[] }[];
    };
    expect(policy.bindings).toEqual(
      expect.arrayContaining([
        { role: 'roles/logging.logWriter', members: [`serviceAccount:${sa('ilb-consul')}`] },
      ]),
    );
    const ghost = await gcloud([
      'projects',
      'add-iam-policy-binding',
      project,
      `--member=serviceAccount:${sa('ilb-nobody')}`,
      '--role=roles/logging.logWriter',
      '--condition=None',
    ]);
    expect(describeText(ghost)).toMatch(/does not exist/);
  });

  it('secretmanager: secrets, versions by stdin, labels, IAM', async () => {
    const secretIds = [
      'consul-ca-cert',
      'consul-token-fn-instance-events',
      'consul-initial-management-token',
    ];
    await Promise.all(
      secretIds.map((id) =>
        ok([
          'secrets',
          'create',
          id,
          '--replication-policy=automatic',
          '--labels=app=gce-ilb-orchestrator,deployment=ilb',
          ...P,
        ]),
      ),
    );
    await Promise.all(
      secretIds.map((id) =>
        ok(['secrets', 'versions', 'add', id, '--data-file=-', ...P], `value of ${id}\n`),
      ),
    );
    const [listed, access, none] = await Promise.all([
      ok(['secrets', 'versions', 'list', 'consul-ca-cert', ...P, '--limit=1', '--format=value(name)']),
      ok(['secrets', 'versions', 'access', 'latest', '--secret=consul-ca-cert', ...P]),
      ok([
        'secrets',
        'describe',
        'consul-initial-management-token',
        ...P,
        '--format=value(labels.acl_registered)',
      ]),
    ]);
    expect(listed).toBe('1');
    expect(access).toBe('value of consul-ca-cert');
    expect(none).toBe('');
    await ok([
      'secrets',
      'update',
      'consul-initial-management-token',
      '--update-labels=acl_registered=75a1d69621',
      ...P,
    ]);
    await ok([
      'secrets',
      'add-iam-policy-binding',
      'consul-ca-cert',
      `--member=serviceAccount:${sa('ilb-consul')}`,
      '--role=roles/secretmanager.secretAccessor',
      ...P,
    ]);
    const [label, policy] = await Promise.all([
      ok([
        'secrets',
        'describe',
        'consul-initial-management-token',
        ...P,
        '--format=value(labels.acl_registered)',
      ]),
      ok(['secrets', 'get-iam-policy', 'consul-ca-cert', ...P, '--format=json']),
    ]);
    expect(label).toBe('75a1d69621');
    expect(JSON.parse(policy)).toMatchObject({
      bindings: [
        { role: 'roles/secretmanager.secretAccessor', members: [`serviceAccount:${sa('ilb-consul')}`] },
      ],
    });
    expect(inventory('secretmanager')).toHaveLength(3);
  });

  it('pubsub, logging, monitoring, scheduler: topics, hold subscriptions, sink, channel, policy, job', async () => {
    const labels = '--labels=app=gce-ilb-orchestrator,deployment=ilb';
    await Promise.all(
      ['instance-events', 'instance-events-dead-letter', 'scaling-alerts'].map((t) =>
        ok(['pubsub', 'topics', 'create', t, labels, ...P]),
      ),
    );
    const filter =
      'resource.type="gce_instance" AND protoPayload.methodName:"compute.instances." AND (protoPayload.resourceName:"/instances/backend-ilb-")';
    await Promise.all([
      ok([
        'pubsub',
        'subscriptions',
        'create',
        'instance-events-dead-letter-hold',
        '--topic=instance-events-dead-letter',
        '--message-retention-duration=7d',
        labels,
        ...P,
      ]),
      ok([
        'logging',
        'sinks',
        'create',
        'ilb-instance-events',
        `pubsub.googleapis.com/projects/${project}/topics/instance-events`,
        `--log-filter=${filter}`,
        '--description=gce-ilb-orchestrator deployment=ilb',
        ...P,
      ]),
      ok([
        'beta',
        'monitoring',
        'channels',
        'create',
        '--display-name=ilb scaling-alerts',
        '--type=pubsub',
        `--channel-labels=topic=projects/${project}/topics/scaling-alerts`,
        '--user-labels=app=gce-ilb-orchestrator,deployment=ilb',
        '--description=gce-ilb-orchestrator deployment=ilb',
        ...P,
      ]),
      ok([
        'scheduler',
        'jobs',
        'create',
        'pubsub',
        'ilb-health-sweep',
        '--location=us-central1',
        '--schedule=*/5 * * * *',
        '--time-zone=Etc/UTC',
        `--topic=projects/${project}/topics/instance-events`,
        '--message-body={}',
        '--description=gce-ilb-orchestrator deployment=ilb',
        ...P,
      ]),
    ]);
    const [writer, channel, job] = await Promise.all([
      ok(['logging', 'sinks', 'describe', 'ilb-instance-events', ...P, '--format=value(writerIdentity)']),
      ok(channelList),
      ok([
        'scheduler',
        'jobs',
        'describe',
        'ilb-health-sweep',
        '--location=us-central1',
        ...P,
        '--format=value(name)',
      ]),
    ]);
    expect(writer).toBe(`serviceAccount:service-${projectNumber}@gcp-sa-logging.iam.gserviceaccount.com`);
    expect(channel).toMatch(new RegExp(`^projects/${project}/notificationChannels/\\d+$`));
    expect(job).toBe(`projects/${project}/locations/us-central1/jobs/ilb-health-sweep`);
    const policy = {
      displayName: 'ilb backend CPU high',
      combiner: 'OR',
      conditions: [
        {
          displayName: 'backend mean CPU above 0.8',
          conditionThreshold: {
            filter:
              'resource.type = "gce_instance" AND metric.type = "compute.googleapis.com/instance/cpu/utilization"',
            aggregations: [
              { alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN', crossSeriesReducer: 'REDUCE_MEAN' },
            ],
            comparison: 'COMPARISON_GT',
            thresholdValue: 0.8,
            duration: '300s',
          },
        },
      ],
      alertStrategy: { notificationPrompts: ['OPENED', 'CLOSED'], autoClose: '1800s' },
      notificationChannels: [channel],
      userLabels: { app: 'gce-ilb-orchestrator', deployment: 'ilb' },
    };
    await Promise.all([
      ok(['alpha', 'monitoring', 'policies', 'create', `--policy=${JSON.stringify(policy)}`, ...P]),
      ok([
        'pubsub',
        'topics',
        'add-iam-policy-binding',
        'instance-events',
        `--member=${writer}`,
        '--role=roles/pubsub.publisher',
        ...P,
      ]),
    ]);
    const [policyName, bad] = await Promise.all([
      ok(policyList),
      gcloud([
        'alpha',
        'monitoring',
        'policies',
        'create',
        `--policy=${JSON.stringify({ ...policy, conditions: [{ ...policy.conditions[0], conditionThreshold: { ...policy.conditions[0]?.conditionThreshold, aggregations: [{ crossSeriesReducer: 'REDUCE_MEAN' }] } }] })}`,
        ...P,
      ]),
    ]);
    expect(policyName).toMatch(/^projects\/demo-project\/alertPolicies\/\d+$/);
    expect(describeText(bad)).toMatch(/crossSeriesReducer needs alignmentPeriod/);
    expect(
      inventory('monitoring')
        .map((i) => i.kind)
        .sort(),
    ).toEqual(['alertPolicy', 'notificationChannel']);
  });

  it('cloudfunctions, run, eventarc: deploy with upload and operation, egress, invoker, dead letters', async () => {
    const fnSa = sa('ilb-fn-instance-events');
    const deploy = [
      'functions',
      'deploy',
      'instanceEvents',
      region,
      '--gen2',
      '--runtime=nodejs22',
      '--source=.',
      '--ignore-file=infra-scripts/deploy/functions.gcloudignore',
      '--entry-point=instanceEvents',
      '--trigger-topic=instance-events',
      `--trigger-service-account=${fnSa}`,
      '--retry',
      `--service-account=${fnSa}`,
      `--build-service-account=projects/${project}/serviceAccounts/${sa('ilb-fn-build')}`,
      '--concurrency=32',
      '--cpu=1',
      '--memory=512Mi',
      '--max-instances=4',
      '--timeout=120s',
      '--ingress-settings=internal-only',
      '--no-allow-unauthenticated',
      `--set-env-vars=GOOGLE_CLOUD_PROJECT=${project},CONSUL_HTTP_ADDR=https://10.10.0.10:8501`,
      '--set-secrets=CONSUL_HTTP_TOKEN=consul-token-fn-instance-events:latest,/secrets/consul-ca/ca.pem=consul-ca-cert:latest',
      '--update-labels=app=gce-ilb-orchestrator,deployment=ilb,config_hash=a3f400c80a',
      ...P,
    ];
    await ok(deploy);
    const [hash, trigger] = await Promise.all([
      ok(['functions', 'describe', 'instanceEvents', region, ...P, '--format=value(labels.config_hash)']),
      ok(['functions', 'describe', 'instanceEvents', region, ...P, '--format=value(eventTrigger.trigger)']),
    ]);
    expect(hash).toBe('a3f400c80a');
    // A changed configuration redeploys: a patch with a fresh upload.
    await ok([...deploy.slice(0, -3), '--update-labels=deployment=ilb,config_hash=b0b0b0b0b0', ...P]);
    expect(
      await ok([
        'functions',
        'describe',
        'instanceEvents',
        region,
        ...P,
        '--format=value(labels.config_hash)',
      ]),
    ).toBe('b0b0b0b0b0');
    const [subscription] = await Promise.all([
      ok([
        'eventarc',
        'triggers',
        'describe',
        trigger,
        '--location=us-central1',
        ...P,
        '--format=value(transport.pubsub.subscription)',
      ]),
      ok([
        'run',
        'services',
        'update',
        'instanceevents',
        region,
        '--network=ilb-net',
        '--subnet=ilb-fn-egress',
        '--vpc-egress=private-ranges-only',
        ...P,
      ]),
      ok([
        'functions',
        'add-invoker-policy-binding',
        'instanceEvents',
        region,
        `--member=serviceAccount:${fnSa}`,
        ...P,
      ]),
    ]);
    await ok([
      'pubsub',
      'subscriptions',
      'update',
      subscription,
      '--dead-letter-topic=instance-events-dead-letter',
      '--max-delivery-attempts=10',
      '--min-retry-delay=10s',
      '--max-retry-delay=600s',
      ...P,
    ]);
    const [service, invokers, deadLetter] = await Promise.all([
      ok(['run', 'services', 'describe', 'instanceevents', region, ...P, '--format=json']),
      ok(['run', 'services', 'get-iam-policy', 'instanceevents', region, ...P, '--format=json']),
      ok([
        'pubsub',
        'subscriptions',
        'describe',
        subscription,
        ...P,
        '--format=value(deadLetterPolicy.deadLetterTopic)',
      ]),
    ]);
    expect(service).toContain('ilb-fn-egress');
    expect(JSON.parse(invokers)).toMatchObject({
      bindings: [{ role: 'roles/run.invoker', members: [`serviceAccount:${fnSa}`] }],
    });
    expect(deadLetter).toBe(`projects/${project}/topics/instance-events-dead-letter`);
    const badCpu = await gcloud([
      'functions',
      'deploy',
      'healthSweep',
      region,
      '--gen2',
      '--runtime=nodejs22',
      '--source=.',
      '--ignore-file=infra-scripts/deploy/functions.gcloudignore',
      '--entry-point=healthSweep',
      '--trigger-topic=instance-events',
      '--concurrency=8',
      '--cpu=0.5',
      '--memory=512Mi',
      ...P,
    ]);
    expect(describeText(badCpu)).toMatch(/availableCpu >= 1/);
  });

  it('dashboards: the API shape is checked, then kept and listed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rehearsal-dashboard-'));
    const chart = (filter: string) => ({
      dataSets: [
        {
          timeSeriesQuery: {
            timeSeriesFilter: {
              filter,
              aggregation: {
                alignmentPeriod: '60s',
                perSeriesAligner: 'ALIGN_MEAN',
                crossSeriesReducer: 'REDUCE_SUM',
                groupByFields: ['metric.label.role'],
              },
            },
          },
          plotType: 'LINE',
        },
      ],
    });
    const tile = (xPos: number, title: string) => ({
      xPos,
      yPos: 0,
      width: 24,
      height: 16,
      widget: { title, xyChart: chart('metric.type="custom.googleapis.com/ilb/healthy_members"') },
    });
    writeFileSync(
      join(dir, 'good.json'),
      JSON.stringify({
        displayName: 'ilb orchestrator',
        mosaicLayout: { columns: 48, tiles: [tile(0, 'healthy'), tile(24, 'stale')] },
      }),
    );
    writeFileSync(
      join(dir, 'overlap.json'),
      JSON.stringify({
        displayName: 'ilb bad',
        mosaicLayout: { columns: 48, tiles: [tile(0, 'a'), tile(12, 'b')] },
      }),
    );
    const [good, overlap] = await Promise.all([
      ok([
        'monitoring',
        'dashboards',
        'create',
        `--config-from-file=${join(dir, 'good.json')}`,
        ...P,
        '--format=value(name)',
      ]),
      gcloud(['monitoring', 'dashboards', 'create', `--config-from-file=${join(dir, 'overlap.json')}`, ...P]),
    ]);
    rmSync(dir, { recursive: true, force: true });
    expect(good).toMatch(new RegExp(`^projects/${projectNumber}/dashboards/`));
    expect(describeText(overlap)).toMatch(/not overlap/);
    expect(await ok(['monitoring', 'dashboards', 'list', ...P, '--format=value(displayName)'])).toBe(
      'ilb orchestrator',
    );
    await ok(['monitoring', 'dashboards', 'delete', good, ...P, '--quiet']);
  });

  it('teardown: the deploy commands remove everything they made', async () => {
    const [channel, policy] = await Promise.all([
      ok(channelList),
      ok(policyList),
      ok(['functions', 'delete', 'instanceEvents', region, ...P, '--quiet']),
      ok(['scheduler', 'jobs', 'delete', 'ilb-health-sweep', '--location=us-central1', ...P, '--quiet']),
      ok(['logging', 'sinks', 'delete', 'ilb-instance-events', ...P, '--quiet']),
      ok(['pubsub', 'subscriptions', 'delete', 'instance-events-dead-letter-hold', ...P, '--quiet']),
      ok([
        'projects',
        'remove-iam-policy-binding',
        project,
        `--member=serviceAccount:${sa('ilb-consul')}`,
        '--role=roles/logging.logWriter',
        '--condition=None',
        '--quiet',
      ]),
    ]);
    await Promise.all([
      ok(['alpha', 'monitoring', 'policies', 'delete', policy, ...P, '--quiet']),
      ok(['beta', 'monitoring', 'channels', 'delete', channel, '--force', ...P, '--quiet']),
      ok([
        'projects',
        'remove-iam-policy-binding',
        project,
        `--member=serviceAccount:${sa('ilb-fn-instance-events')}`,
        `--role=projects/${project}/roles/ilb_instanceEvents`,
        '--condition=None',
        '--quiet',
      ]),
      ...['instance-events', 'instance-events-dead-letter', 'scaling-alerts'].map((t) =>
        ok(['pubsub', 'topics', 'delete', t, ...P, '--quiet']),
      ),
      ...['consul-ca-cert', 'consul-token-fn-instance-events', 'consul-initial-management-token'].map((id) =>
        ok(['secrets', 'delete', id, ...P, '--quiet']),
      ),
    ]);
    await Promise.all([
      ok(['iam', 'roles', 'delete', 'ilb_instanceEvents', ...P, '--quiet']),
      ...['ilb-consul', 'ilb-fn-build', 'ilb-fn-instance-events'].map((id) =>
        ok(['iam', 'service-accounts', 'delete', sa(id), ...P, '--quiet']),
      ),
    ]);
    expect(modules.flatMap((m) => m.inventory())).toEqual([]);
    const gone = await gcloud(['secrets', 'describe', 'consul-ca-cert', ...P]);
    expect(describeText(gone)).toMatch(/NOT_FOUND/);
  });
});
