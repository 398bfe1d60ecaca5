/**
 * healthSweep's scenarios: what the scheduled sweep does when events never came (`stale-node`) and
 * what it refuses to do when its view of the world cannot be trusted (`partition`). Both read the
 * sweeps' own report lines (healthSweep logs one per sweep) and healthSweepHttp's dry-run report.
 */
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { nodeMetaKeys, services } from '../../../shared/contract';
import type { Instance } from '../compute-emulator/state';
import { sleep } from '../launch';
import type { Sandbox } from './sandbox';
import { sandboxProject, sandboxSweepThresholds, sandboxZones } from './topology';
import { type Out, watch } from './watch';

export const sweepScenarioNames = ['sweep-report', 'stale-node', 'partition'] as const;
export type SweepScenarioName = (typeof sweepScenarioNames)[number];

type Outcome = Record<string, unknown>;

// healthSweep's per-sweep log line (shared/health-sweep/sweep.ts logSweep): only what is read here.
const sweepLineSchema = z.object({
  message: z.literal('health sweep done'),
  time: z.string(),
  reportOnly: z.array(z.string()).optional(),
  zones: z
    .array(z.object({ zone: z.string(), running: z.number(), dead: z.number(), partitioned: z.boolean() }))
    .optional(),
  refused: z.array(z.object({ type: z.string(), reason: z.string() })).optional(),
  stale: z.number().optional(),
  done: z.number().optional(),
  stopped: z.string().optional(),
});
export type SweepLine = z.infer<typeof sweepLineSchema>;

/** The sweeps the scheduler ran that finished at or after `since` (ms), oldest first. */
export function sweepsSince(sb: Sandbox, since: number): SweepLine[] {
  return sb.functionLogs('healthSweep').flatMap((line) => {
    const parsed = sweepLineSchema.safeParse(line);
    return parsed.success && Date.parse(parsed.data.time) >= since ? [parsed.data] : [];
  });
}

// healthSweepHttp's answer (shared/health-sweep/sweep.ts SweepResult): the parts a scenario prints.
const dryRunSchema = z.object({
  status: z.string(),
  dryRun: z.boolean(),
  durationMs: z.number(),
  report: z
    .object({
      seen: z.object({
        groups: z.number(),
        members: z.number(),
        nodes: z.number(),
        nodesInGroups: z.number(),
      }),
      reportOnly: z.array(z.string()),
      zones: z.array(
        z.object({ zone: z.string(), running: z.number(), dead: z.number(), partitioned: z.boolean() }),
      ),
      stale: z.array(z.object({ node: z.string(), reason: z.string() })),
      absent: z.array(z.object({ node: z.string(), absentCount: z.number() })),
      broken: z.array(z.object({ name: z.string() })),
      orphans: z.array(z.object({ name: z.string() })),
      actions: z.array(z.object({ type: z.string() })),
      refused: z.array(z.object({ action: z.object({ type: z.string() }), reason: z.string() })),
    })
    .optional(),
});

/** Asks healthSweepHttp for a dry-run report, as an operator would with curl and a bearer token. */
export async function dryRunReport(sb: Sandbox): Promise<z.infer<typeof dryRunSchema>> {
  if (!sb.sweepHttpUrl)
    throw new Error('healthSweepHttp is not running (build with tsc -p tsconfig.build.json)');
  const res = await fetch(`${sb.sweepHttpUrl}?dryRun=true`, {
    headers: { authorization: 'Bearer sandbox-operator' },
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new Error(`healthSweepHttp answered ${res.status}`);
  return dryRunSchema.parse(await res.json());
}

/** The next sweep that finishes after now and satisfies `accept`. */
const nextSweep = (sb: Sandbox, out: Out, what: string, ms: number, accept: (s: SweepLine) => boolean) => {
  const from = Date.now();
  return watch(out, what, ms, async () => sweepsSince(sb, from).find(accept));
};

interface Phantom {
  name: string;
  instanceId: string;
  zone: string;
}

/**
 * Registers a node that looks like a backend member whose instance vanished without any event: the
 * group's name and role, an instance id no group has, its agent gone (a critical check), at a
 * TEST-NET address that nothing serves. No audit entry is written, so only the sweep can find it.
 */
async function plantPhantom(sb: Sandbox, zone: string): Promise<Phantom> {
  const taken = new Set(sb.compute.emulator.allInstances().flatMap((i) => [i.name, i.id]));
  let name = '';
  let instanceId = '';
  do {
    name = `backend-${randomInt(36 ** 3, 36 ** 4).toString(36)}`;
    // 19 digits, as GCE prints ids (uint64).
    instanceId = `${randomInt(1, 9)}${randomInt(1e8, 1e9)}${randomInt(1e8, 1e9)}`;
  } while (taken.has(name) || taken.has(instanceId));
  await sb.consul.read((c) =>
    c.catalog.register({
      node: name,
      address: `192.0.2.${randomInt(1, 255)}`,
      nodeMeta: {
        [nodeMetaKeys.instanceId]: instanceId,
        [nodeMetaKeys.zone]: zone,
        [nodeMetaKeys.project]: sandboxProject,
        [nodeMetaKeys.group]: 'backend',
        [nodeMetaKeys.role]: 'backend',
      },
      service: {
        id: services.backend.name,
        service: services.backend.name,
        port: services.backend.port,
        tags: [zone],
      },
      check: { checkId: 'agent-gone', name: 'agent gone (sandbox phantom)', status: 'critical' },
    }),
  );
  return { name, instanceId, zone };
}

const nodeExists = async (sb: Sandbox, name: string) =>
  (await sb.consul.read((c) => c.catalog.node(name))) !== null;

const running = (sb: Sandbox): Instance[] =>
  sb.compute.emulator.allInstances().filter((i) => i.status === 'RUNNING');

/**
 * Watches, once a second until stopped, that every instance running at the start keeps a catalog
 * node carrying its own id: the sweep must never remove a live node.
 */
function guardLiveNodes(sb: Sandbox, live: readonly Instance[]) {
  const lost = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const nodes = await sb.consul.read((c) => c.catalog.nodes()).catch(() => undefined);
      if (nodes) {
        const ids = new Map(nodes.map((n) => [n.name, n.meta[nodeMetaKeys.instanceId]]));
        for (const i of live) if (ids.get(i.name) !== i.id) lost.add(`${i.name}/${i.id}`);
      }
      await sleep(1000);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return [...lost].sort();
    },
  };
}

/** Every running instance's node passes and carries its id; no node of a group claims an unknown id. */
async function catalogWhole(
  sb: Sandbox,
): Promise<{ whole: boolean; notPassing: string[]; foreign: string[] }> {
  const [nodes, checks] = await sb.consul.read((c) =>
    Promise.all([c.catalog.nodes(), c.health.state('any')]),
  );
  const instances = running(sb);
  const ids = new Set(instances.map((i) => i.id));
  const failing = new Set(checks.filter((c) => c.Status !== 'passing').map((c) => c.Node));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const notPassing = instances
    .filter((i) => byName.get(i.name)?.meta[nodeMetaKeys.instanceId] !== i.id || failing.has(i.name))
    .map((i) => i.name);
  const foreign = nodes
    .filter((n) => n.meta[nodeMetaKeys.group] && !ids.has(n.meta[nodeMetaKeys.instanceId] ?? ''))
    .map((n) => n.name);
  return { whole: notPassing.length === 0 && foreign.length === 0, notPassing, foreign };
}

const sweepWindow = (sb: Sandbox, sweeps: number) => sweeps * sb.sweepIntervalMs + 30_000;

export const sweepScenarios: Record<SweepScenarioName, (sb: Sandbox, out: Out) => Promise<Outcome>> = {
  async 'sweep-report'(sb, out) {
    out(`Asking healthSweepHttp (${sb.sweepHttpUrl ?? 'not running'}) for a dry run, with a bearer token.`);
    const { status, durationMs, report } = await dryRunReport(sb);
    if (!report) {
      out(`No report (status ${status}).`);
      return { status };
    }
    const names = (list: { node?: string; name?: string }[]) =>
      list.map((x) => x.node ?? x.name).join(', ') || 'none';
    out(
      `Seen in ${durationMs} ms: ${report.seen.groups} groups, ${report.seen.members} members, ${report.seen.nodes} nodes (${report.seen.nodesInGroups} of watched groups).`,
    );
    out(`Report-only: ${report.reportOnly.join(', ') || 'no'}.`);
    for (const z of report.zones)
      out(
        `Zone ${z.zone}: ${z.dead}/${z.running} dead${z.partitioned ? ', PARTITIONED (only reported)' : ''}.`,
      );
    out(
      `Stale: ${names(report.stale)}; absent: ${names(report.absent)}; broken: ${names(report.broken)}; orphans: ${names(report.orphans)}.`,
    );
    out(
      `Would do: ${report.actions.map((a) => a.type).join(', ') || 'nothing'}; refused: ${report.refused.map((r) => `${r.action.type} (${r.reason})`).join(', ') || 'nothing'}.`,
    );
    return {
      status,
      reportOnly: report.reportOnly,
      zones: report.zones,
      stale: report.stale.length,
      actions: report.actions.map((a) => a.type),
      refused: report.refused.map((r) => r.reason),
    };
  },

  async 'stale-node'(sb, out) {
    const live = running(sb);
    const guard = guardLiveNodes(sb, live);
    const zone = sandboxZones[0]!;
    const n = sandboxSweepThresholds.absentSweeps;
    const phantom = await plantPhantom(sb, zone);
    const planted = Date.now();
    out(
      `Registered ${phantom.name} (id ${phantom.instanceId}) in ${zone} as a backend member whose instance vanished without an event.`,
    );
    out(
      `healthSweep runs every ${sb.sweepIntervalMs / 1000} s: Compute's 404 for the name makes it stale at once; an id absent ${n} sweeps in a row does too.`,
    );
    const gone = await watch(out, `the sweep to remove ${phantom.name}`, sweepWindow(sb, n + 1), async () =>
      (await nodeExists(sb, phantom.name)) ? undefined : Date.now(),
    );
    // Sweeps that finished between the registration and the removal (the first may have started
    // before the node appeared).
    const sweeps = gone ? sweepsSince(sb, planted).filter((s) => Date.parse(s.time) <= gone).length : null;
    const lost = await guard.stop();
    out(
      gone
        ? `${phantom.name} removed ${Math.round((gone - planted) / 1000)} s after it appeared, by sweep ${sweeps} since.`
        : `${phantom.name} is still registered.`,
    );
    out(
      lost.length === 0
        ? `All ${live.length} live nodes kept their registration throughout.`
        : `Live nodes lost: ${lost.join(', ')}.`,
    );
    return {
      node: phantom.name,
      instanceId: phantom.instanceId,
      removed: gone !== undefined,
      sweepsUntilRemoved: sweeps,
      absentSweeps: n,
      liveNodes: live.length,
      liveNodesLost: lost,
    };
  },

  async partition(sb, out) {
    const link = sb.consulLinks.healthSweep;
    if (!link) throw new Error('healthSweep is not running (build with tsc -p tsconfig.build.json)');
    const live = running(sb);

    // (a) Consul reads fail: the sweep gets its lock and KV, but not the catalog or the checks.
    out(
      "(a) Cutting healthSweep off from Consul's catalog and health reads (503), KV and sessions still answer.",
    );
    link.failReads(true);
    let a: Outcome;
    try {
      const phantom = await plantPhantom(sb, sandboxZones[0]!);
      out(
        `    Planted ${phantom.name} (id ${phantom.instanceId}): stale, and removable once the sweep can see.`,
      );
      const blind = await nextSweep(sb, out, 'a sweep over failing reads', sweepWindow(sb, 2), (s) =>
        (s.reportOnly ?? []).includes('incomplete-read'),
      );
      const second = await nextSweep(sb, out, 'a second sweep over failing reads', sweepWindow(sb, 2), (s) =>
        (s.reportOnly ?? []).includes('incomplete-read'),
      );
      const keptWhileBlind = await nodeExists(sb, phantom.name);
      out(
        `    ${blind && second ? 'Two sweeps' : 'Sweeps'} reported report-only (${blind?.reportOnly?.join(', ') ?? 'none seen'}); ${phantom.name} ${keptWhileBlind ? 'was left alone' : 'was REMOVED'}.`,
      );
      link.failReads(false);
      out('    Healed the link.');
      const removed = await watch(
        out,
        `${phantom.name} to go once reads work`,
        sweepWindow(sb, 3),
        async () => ((await nodeExists(sb, phantom.name)) ? undefined : true),
      );
      out(
        `    ${removed ? `${phantom.name} removed by the next complete sweep.` : `${phantom.name} is still there.`}`,
      );
      a = {
        reportOnlySweeps: [blind, second].filter(Boolean).length,
        keptWhileBlind,
        removedAfterHeal: removed === true,
      };
    } finally {
      link.failReads(false);
    }

    // (b) Every member of a zone looks dead: their processes (Consul agents included) frozen.
    const zone = sandboxZones[1]!;
    const frozen = running(sb).filter((i) => i.zone === zone);
    out(
      `(b) Freezing every instance in ${zone} (${frozen.map((i) => i.name).join(', ')}): GCE still says RUNNING.`,
    );
    for (const i of frozen) await sb.compute.emulator.hang(i.zone, i.name, true);
    let b: Outcome;
    try {
      // Until Consul sees the members fail, the zone is healthy to the sweep, and a stale node in it
      // is rightly removed: plant the phantom once a sweep has seen the zone dead.
      const seen = await nextSweep(
        sb,
        out,
        `a sweep that sees ${zone} partitioned`,
        sweepWindow(sb, 4),
        (s) => (s.zones ?? []).some((z) => z.zone === zone && z.partitioned),
      );
      const phantom = await plantPhantom(sb, zone);
      out(
        `    ${seen ? `A sweep saw ${zone} dead.` : `No sweep saw ${zone} dead.`} Planted ${phantom.name} (id ${phantom.instanceId}) there.`,
      );
      const sweep = await nextSweep(
        sb,
        out,
        `a sweep that refuses to remove ${phantom.name}`,
        sweepWindow(sb, 2),
        (s) =>
          (s.zones ?? []).some((z) => z.zone === zone && z.partitioned) &&
          (s.refused ?? []).some((r) => r.type === 'deregister' && r.reason === 'zone-partitioned'),
      );
      // One more: the refusal holds sweep after sweep.
      const again = await nextSweep(sb, out, 'the next sweep', sweepWindow(sb, 2), () => true);
      const report = await dryRunReport(sb).catch((err: unknown) => {
        out(`    healthSweepHttp: ${String(err)}`);
        return undefined;
      });
      const zoneReport = report?.report?.zones.find((z) => z.zone === zone);
      out(
        `    Sweep: ${zone} ${sweep ? 'partitioned' : 'never seen partitioned'}; refused ${JSON.stringify(sweep?.refused ?? [])}.`,
      );
      out(
        `    healthSweepHttp dry run: ${zone} ${zoneReport ? `${zoneReport.dead}/${zoneReport.running} dead, partitioned: ${zoneReport.partitioned}` : 'not in the report'}; report-only: [${report?.report?.reportOnly.join(', ') ?? ''}].`,
      );
      const phantomKept = await nodeExists(sb, phantom.name);
      const recreated = frozen.filter((i) => {
        const now = sb.compute.emulator.allInstances().find((x) => x.name === i.name);
        return now?.id !== i.id;
      });
      out(
        `    ${phantomKept ? 'Nothing deleted' : `${phantom.name} was REMOVED`}; ${recreated.length === 0 ? 'nothing recreated' : `recreated: ${recreated.map((i) => i.name).join(', ')}`}.`,
      );
      b = {
        zone,
        frozen: frozen.map((i) => i.name),
        partitionedSeen: seen !== undefined,
        refusedSeen: sweep !== undefined && again !== undefined,
        refused: sweep?.refused ?? [],
        dryRunPartitioned: zoneReport?.partitioned ?? null,
        phantomKept,
        recreated: recreated.map((i) => i.name),
        phantom: phantom.name,
      };
    } finally {
      for (const i of frozen) await sb.compute.emulator.hang(i.zone, i.name, false).catch(() => undefined);
    }
    out(`    Thawed ${zone}; waiting for its nodes to pass and the sweep to finish the phantom.`);
    const whole = await watch(out, 'the catalog to be whole', sweepWindow(sb, 4) + 30_000, async () => {
      const c = await catalogWhole(sb);
      return c.whole ? c : undefined;
    });
    const last = whole ?? (await catalogWhole(sb));
    const lostLive = live
      .filter((i) => !running(sb).some((x) => x.name === i.name && x.id === i.id))
      .map((i) => i.name);
    out(
      last.whole
        ? `Catalog whole: every running instance's node passes with its own id, no foreign node left.`
        : `Catalog not whole: not passing ${JSON.stringify(last.notPassing)}, foreign ${JSON.stringify(last.foreign)}.`,
    );
    return { readsFail: a, zoneDead: b, catalogWhole: last.whole, instancesReplaced: lostLive };
  },
};
