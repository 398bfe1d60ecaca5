/**
 * `deploy.sh --verify`: the checks built from a config (which gcloud commands, which URLs) and their
 * verdicts on fake command results and answers.
 */
import { resolveConfig } from '../../infra-scripts/deploy/config';
import { parseArgs } from '../../infra-scripts/deploy/main';
import {
  judgeFrontend,
  judgeGroup,
  judgeSweep,
  runVerify,
  verifyChecks,
  type VerifyIo,
} from '../../infra-scripts/deploy/verify';

const healthy = (name: string) => ({
  instance: `https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instances/${name}`,
  instanceStatus: 'RUNNING',
  currentAction: 'NONE',
  instanceHealth: [{ detailedHealthState: 'HEALTHY', healthCheck: 'hc' }],
});

/** A deployment where everything answers well, unless `override` says otherwise. */
function fakeIo(override: Partial<Record<string, { code: number; stdout: string; stderr?: string }>> = {}) {
  const calls: string[] = [];
  const io: VerifyIo & { sweepStatus: number; sweepBody: string } = {
    sweepStatus: 200,
    sweepBody: JSON.stringify({
      status: 'completed',
      dryRun: true,
      durationMs: 812,
      done: [{ action: { type: 'deregister' }, outcome: 'not-attempted' }],
    }),
    async gcloud(args) {
      const line = args.join(' ');
      calls.push(line);
      const key = Object.keys(override).find((k) => line.includes(k));
      if (key) return { stderr: '', ...override[key]! };
      if (line.includes('list-instances'))
        return { code: 0, stdout: JSON.stringify([healthy('a'), healthy('b')]), stderr: '' };
      if (line.includes('instances describe')) return { code: 0, stdout: 'RUNNING\n', stderr: '' };
      if (line.includes('addresses describe')) return { code: 0, stdout: '203.0.113.7\n', stderr: '' };
      if (line.includes('functions describe'))
        return { code: 0, stdout: 'https://healthsweephttp-abc-uc.a.run.app\n', stderr: '' };
      if (line.includes('print-identity-token')) return { code: 0, stdout: 'TOKEN\n', stderr: '' };
      return { code: 1, stdout: '', stderr: `unexpected ${line}` };
    },
    async http(url, headers) {
      calls.push(`GET ${url} ${JSON.stringify(headers ?? {})}`);
      if (url.startsWith('http://203.0.113.7')) return { status: 200, body: 'backend-ilb-x1 10.10.0.5\n' };
      return { status: io.sweepStatus, body: io.sweepBody };
    },
  };
  return { io, calls };
}

const c = resolveConfig({ project: 'demo-project' });

test('the checks run the README commands: list-instances per group, Consul servers, the frontend, a dry-run sweep', async () => {
  const { io, calls } = fakeIo();
  const lines: string[] = [];
  const result = await runVerify(verifyChecks(c), io, (l) => lines.push(l));
  expect(result).toEqual({ ok: true, failed: [] });
  expect(calls).toEqual([
    'compute instance-groups managed list-instances ilb-backend --region=us-central1 --project demo-project --format=json',
    'compute instance-groups managed list-instances ilb-haproxy --region=us-central1 --project demo-project --format=json',
    'compute instance-groups managed list-instances ilb-frontend --zone=us-central1-a --project demo-project --format=json',
    'compute instances describe consul-ilb-0 --zone=us-central1-a --project demo-project --format=value(status)',
    'compute instances describe consul-ilb-1 --zone=us-central1-b --project demo-project --format=value(status)',
    'compute instances describe consul-ilb-2 --zone=us-central1-c --project demo-project --format=value(status)',
    'compute addresses describe ilb-frontend --region=us-central1 --project demo-project --format=value(address)',
    'GET http://203.0.113.7/ {}',
    'functions describe healthSweepHttp --region=us-central1 --gen2 --project demo-project --format=value(serviceConfig.uri)',
    'auth print-identity-token',
    'GET https://healthsweephttp-abc-uc.a.run.app?dryRun=true {"authorization":"Bearer TOKEN"}',
  ]);
  expect(lines.filter((l) => l.startsWith('PASS'))).toHaveLength(8);
  expect(lines).toContain(
    'PASS healthSweepHttp answers a dry-run sweep report: completed, 1 actions it would take',
  );
  expect(lines.at(-1)).toBe('verify: all 8 checks passed');
});

test('without healthSweep there is no sweep check', () => {
  const ids = verifyChecks(resolveConfig({ project: 'demo-project', functions: ['instanceEvents'] })).map(
    (x) => x.id,
  );
  expect(ids).not.toContain('sweep');
  expect(ids).toContain('frontend');
});

test('every failure is reported, the others still run, and the run fails naming them', async () => {
  const { io } = fakeIo({
    'list-instances ilb-haproxy': {
      code: 0,
      stdout: JSON.stringify([
        healthy('h1'),
        { ...healthy('h2'), instanceStatus: 'STAGING', currentAction: 'CREATING', instanceHealth: [] },
      ]),
    },
    'consul-ilb-1': {
      code: 1,
      stdout: '',
      stderr: 'ERROR: (gcloud.compute.instances.describe) Could not fetch resource:\n - not found',
    },
  });
  io.sweepStatus = 403;
  io.sweepBody = 'Forbidden';
  const lines: string[] = [];
  const result = await runVerify(verifyChecks(c), io, (l) => lines.push(l));
  expect(result.ok).toBe(false);
  expect(result.failed).toEqual([
    'group ilb-haproxy: every instance RUNNING and HEALTHY: h2: STAGING, CREATING, no health',
    'Consul server consul-ilb-1 RUNNING: ERROR: (gcloud.compute.instances.describe) Could not fetch resource:',
    'healthSweepHttp answers a dry-run sweep report: HTTP 403: the caller must be one of healthSweep.invokers and its ingress is internal-only: run --verify from inside the VPC',
  ]);
  expect(lines.at(-1)).toMatch(/^verify: 3 of 8 checks failed:/);
});

test('verdicts', () => {
  expect(judgeGroup('[]')).toEqual({ ok: false, detail: 'the group has no instances' });
  expect(judgeGroup('not json').ok).toBe(false);
  expect(
    judgeGroup(JSON.stringify([{ ...healthy('a'), instanceHealth: [{ detailedHealthState: 'UNHEALTHY' }] }])),
  ).toEqual({
    ok: false,
    detail: 'a: UNHEALTHY',
  });
  expect(judgeGroup(JSON.stringify([healthy('a')]))).toEqual({
    ok: true,
    detail: '1 instances RUNNING and HEALTHY',
  });
  expect(judgeFrontend(502, 'bad gateway')).toEqual({ ok: false, detail: 'HTTP 502' });
  expect(judgeFrontend(200, '')).toEqual({ ok: false, detail: 'HTTP 200 with an empty body' });
  expect(judgeSweep(200, JSON.stringify({ status: 'completed', dryRun: false, done: [] }), 'all')).toEqual({
    ok: false,
    detail: 'the sweep was not a dry run',
  });
  expect(judgeSweep(409, 'locked', 'all')).toEqual({ ok: false, detail: 'HTTP 409: locked' });
  expect(judgeSweep(404, '', 'internal-only').detail).toMatch(/inside the VPC/);
  expect(judgeSweep(200, '{"status":"completed"}', 'all')).toEqual({
    ok: false,
    detail: 'the answer is not a sweep report',
  });
});

test('--verify is a deploy flag', () => {
  expect(parseArgs(['deploy', '--project', 'p', '--verify']).verify).toBe(true);
  expect(() => parseArgs(['teardown', '--verify'])).toThrow(/unknown argument --verify/);
});
