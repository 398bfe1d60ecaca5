import { z } from 'zod';
import type { ResolvedConfig } from './config';
import { names, type Role } from './steps/names';

/**
 * `deploy.sh --verify`: the README's checks after a deploy, with gcloud. Every group's instances
 * RUNNING and HEALTHY (`list-instances`), the Consul servers RUNNING, the frontend answering on its
 * address, and a dry-run sweep report from healthSweepHttp (with `gcloud auth print-identity-token`).
 * The checks are built from the config (pure); `runVerify` runs them through `VerifyIo`.
 */

export interface VerifyIo {
  gcloud(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  http(url: string, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
}

export type Verdict = { ok: true; detail: string } | { ok: false; detail: string };

export interface VerifyCheck {
  id: string;
  title: string;
  run(io: VerifyIo): Promise<Verdict>;
}

const pass = (detail: string): Verdict => ({ ok: true, detail });
const fail = (detail: string): Verdict => ({ ok: false, detail });
const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

/** JSON text read with a schema: its data, or why not (no JSON, another shape). */
function readJson<T>(schema: z.ZodType<T>, text: string): { data: T } | { why: 'no JSON' | 'shape' } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { why: 'no JSON' };
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? { data: parsed.data } : { why: 'shape' };
}

/** `list-instances --format=json`: what the verdict reads of each managed instance. */
const managedInstances = z.array(
  z.object({
    instance: z.string(),
    instanceStatus: z.string().optional(),
    currentAction: z.string().optional(),
    instanceHealth: z.array(z.object({ detailedHealthState: z.string().optional() })).optional(),
  }),
);

/** A group passes when it has instances and every one is RUNNING, doing nothing, and HEALTHY. */
export function judgeGroup(stdout: string): Verdict {
  const parsed = readJson(managedInstances, stdout);
  if ('why' in parsed)
    return fail(
      parsed.why === 'shape'
        ? 'list-instances printed an unexpected shape'
        : 'list-instances printed no JSON',
    );
  if (parsed.data.length === 0) return fail('the group has no instances');
  const bad = parsed.data.flatMap((m) => {
    const name = m.instance.split('/').pop() ?? m.instance;
    const health = m.instanceHealth?.map((h) => h.detailedHealthState ?? 'UNKNOWN') ?? [];
    const problems = [
      ...(m.instanceStatus === 'RUNNING' ? [] : [m.instanceStatus ?? 'no status']),
      ...(m.currentAction === undefined || m.currentAction === 'NONE' ? [] : [m.currentAction]),
      ...(health.length > 0 && health.every((h) => h === 'HEALTHY') ? [] : [health.join('/') || 'no health']),
    ];
    return problems.length ? [`${name}: ${problems.join(', ')}`] : [];
  });
  if (bad.length) return fail(bad.join('; '));
  return pass(`${parsed.data.length} instances RUNNING and HEALTHY`);
}

/** The frontend answers 200 with a body (a backend's metadata). */
export function judgeFrontend(status: number, body: string): Verdict {
  if (status !== 200) return fail(`HTTP ${status}`);
  if (body.trim() === '') return fail('HTTP 200 with an empty body');
  return pass(`HTTP 200: ${firstLine(body).slice(0, 80)}`);
}

/** What the verdict reads of healthSweepHttp's answer (SweepResult of shared/health-sweep/sweep.ts). */
const sweepReport = z.object({
  status: z.enum(['completed', 'locked']),
  dryRun: z.boolean(),
  done: z.array(z.unknown()),
});

/** A dry-run sweep that completed: the report says so, and what it would do. */
export function judgeSweep(status: number, body: string, ingress: string): Verdict {
  if (status === 401 || status === 403) {
    const where =
      ingress === 'internal-only'
        ? ' and its ingress is internal-only: run --verify from inside the VPC'
        : '';
    return fail(`HTTP ${status}: the caller must be one of healthSweep.invokers${where}`);
  }
  if (status === 404 && ingress === 'internal-only')
    return fail('HTTP 404: ingress is internal-only; run --verify from inside the VPC');
  if (status !== 200) return fail(`HTTP ${status}: ${firstLine(body).slice(0, 120)}`);
  const parsed = readJson(sweepReport, body);
  if ('why' in parsed)
    return fail(parsed.why === 'shape' ? 'the answer is not a sweep report' : 'the answer is not JSON');
  const r = parsed.data;
  if (!r.dryRun) return fail('the sweep was not a dry run');
  if (r.status !== 'completed') return fail(`the sweep did not run: ${r.status}`);
  return pass(`completed, ${r.done.length} actions it would take`);
}

/** The checks of a deployment, in the README's order. */
export function verifyChecks(c: ResolvedConfig): VerifyCheck[] {
  const n = names(c);
  const P = ['--project', c.project];
  type Answer = { ok: true; out: string } | { ok: false; error: string };
  const gcloudOk = async (io: VerifyIo, args: string[]): Promise<Answer> => {
    const r = await io.gcloud(args);
    return r.code === 0
      ? { ok: true, out: r.stdout.trim() }
      : { ok: false, error: firstLine(r.stderr) || `exit code ${r.code}` };
  };
  const group = (role: Role, scope: string[]): VerifyCheck => ({
    id: `group-${role}`,
    title: `group ${n.mig(role)}: every instance RUNNING and HEALTHY`,
    async run(io) {
      const args = ['compute', 'instance-groups', 'managed', 'list-instances', n.mig(role), ...scope, ...P];
      const r = await gcloudOk(io, [...args, '--format=json']);
      return !r.ok ? fail(r.error) : judgeGroup(r.out);
    },
  });
  const region = [`--region=${c.region}`];
  const checks: VerifyCheck[] = [
    group('backend', region),
    group('haproxy', region),
    group('frontend', [`--zone=${c.zones[0]}`]),
    ...Array.from({ length: c.consul.servers }, (_, i) => ({
      id: `consul-${i}`,
      title: `Consul server ${n.consulServer(i)} RUNNING`,
      async run(io: VerifyIo) {
        const zone = c.zones[i % c.zones.length];
        const args = ['compute', 'instances', 'describe', n.consulServer(i), `--zone=${zone}`, ...P];
        const r = await gcloudOk(io, [...args, '--format=value(status)']);
        if (!r.ok) return fail(r.error);
        return r.out === 'RUNNING' ? pass('RUNNING') : fail(r.out || 'no status');
      },
    })),
    {
      id: 'frontend',
      title: `the frontend answers on ${n.frontendAddress}`,
      async run(io) {
        const args = ['compute', 'addresses', 'describe', n.frontendAddress, ...region, ...P];
        const r = await gcloudOk(io, [...args, '--format=value(address)']);
        if (!r.ok) return fail(r.error);
        const res = await io.http(`http://${r.out}/`).catch((e: Error) => ({ status: 0, body: e.message }));
        return res.status === 0
          ? fail(`no answer from ${r.out}: ${res.body}`)
          : judgeFrontend(res.status, res.body);
      },
    },
  ];
  if (!c.functions.includes('healthSweep')) return checks;
  checks.push({
    id: 'sweep',
    title: 'healthSweepHttp answers a dry-run sweep report',
    async run(io) {
      const fn = ['functions', 'describe', 'healthSweepHttp', `--region=${c.region}`, '--gen2', ...P];
      const uri = await gcloudOk(io, [...fn, '--format=value(serviceConfig.uri)']);
      if (!uri.ok) return fail(uri.error);
      const token = await gcloudOk(io, ['auth', 'print-identity-token']);
      if (!token.ok) return fail(`no identity token: ${token.error}`);
      const res = await io
        .http(`${uri.out}?dryRun=true`, { authorization: `Bearer ${token.out}` })
        .catch((e: Error) => ({ status: 0, body: e.message }));
      if (res.status === 0) return fail(`no answer from ${uri.out}: ${res.body}`);
      return judgeSweep(res.status, res.body, c.healthSweep.httpIngress);
    },
  });
  return checks;
}

/** Runs every check (one failing does not stop the others), prints pass/fail, and says what failed. */
export async function runVerify(
  checks: VerifyCheck[],
  io: VerifyIo,
  log: (line: string) => void,
): Promise<{ ok: boolean; failed: string[] }> {
  const failed: string[] = [];
  for (const check of checks) {
    const v = await check.run(io).catch((e: Error) => fail(e.message));
    log(`${v.ok ? 'PASS' : 'FAIL'} ${check.title}: ${v.detail}`);
    if (!v.ok) failed.push(`${check.title}: ${v.detail}`);
  }
  log(
    failed.length === 0
      ? `verify: all ${checks.length} checks passed`
      : `verify: ${failed.length} of ${checks.length} checks failed:\n  ${failed.join('\n  ')}`,
  );
  return { ok: failed.length === 0, failed };
}
