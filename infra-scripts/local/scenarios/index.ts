/**
 * Scenarios run inside a live sandbox; each drives one situation, watches what the system does about
 * it (bounded in time) and reports both. `npm run scenario -- NAME` reaches them through the status
 * page; e2e tests call `runScenario` directly and assert on the returned outcome.
 */
import { startLoad, type LoadResult } from '../load';
import { nodeMetaKeys, services } from '../../../shared/contract';
import type { Caller } from '../compute-emulator/emulator';
import type { Instance } from '../compute-emulator/state';
import { sleep } from '../launch';
import { alertScenarios } from './alert-scenarios';
import type { Sandbox } from './sandbox';
import { sweepScenarioNames, sweepScenarios } from './sweep-scenarios';
import { sandboxRegion } from './topology';
import { type Out, type Outcome, watch } from './watch';

export const scenarioNames = [
  'load',
  'scale-in',
  'kill-backend',
  'preempt',
  'recreate-same-name',
  'lose-consul-server',
  ...sweepScenarioNames,
  'alert-open',
  'alert-close',
  'alert-lost-close',
] as const;
export type ScenarioName = (typeof scenarioNames)[number];

export type { Out, Outcome } from './watch';

const caller: Caller = { userAgent: 'sandbox-scenario' };
const region = { kind: 'regions' as const, name: sandboxRegion };

/** The instance id the catalog's node of that name carries; undefined when there is none. */
async function catalogId(sb: Sandbox, name: string): Promise<string | undefined> {
  const node = await sb.consul.read((c) => c.catalog.node(name));
  return node?.meta[nodeMetaKeys.instanceId];
}

/** Names of the nodes whose instance of `service` passes every check. */
async function passing(sb: Sandbox, service: string): Promise<string[]> {
  const entries = await sb.consul.read((c) => c.health.service(service, { passing: true }));
  return entries.map((e) => e.Node.Node).sort();
}

/** The new id of `victim`'s name once the MIG runs it again and Consul's node of that name carries it. */
async function registeredAgain(sb: Sandbox, victim: Instance): Promise<string | undefined> {
  const id = await catalogId(sb, victim.name);
  const now = members(sb, 'backend').find((i) => i.name === victim.name);
  return now && now.id !== victim.id && id === now.id ? now.id : undefined;
}

function loadOn(sb: Sandbox, ratePerSec: number) {
  const url = new URL(sb.frontendUrl() ?? 'http://127.0.0.1:1/');
  return startLoad({
    host: url.hostname,
    port: Number(url.port || 80),
    path: '/?format=json',
    concurrency: 8,
    ratePerSec,
    timeoutMs: 5000,
  });
}

const summary = (r: LoadResult) =>
  `${r.ok} ok, ${r.failed} failed${r.failed ? ` (${JSON.stringify(r.reasons)})` : ''} in ${Math.round(r.durationMs / 1000)} s`;

const group = (sb: Sandbox, name: string) => sb.compute.emulator.getIgm(region, name);
const members = (sb: Sandbox, igm: string): Instance[] =>
  sb.compute.emulator
    .managedInstances(group(sb, igm))
    .flatMap((m) =>
      m.instance && m.instance.status === 'RUNNING' && m.slot.action === 'NONE' ? [m.instance] : [],
    );

function firstBackend(sb: Sandbox): Instance {
  const victim = members(sb, 'backend')[0];
  if (!victim) throw new Error('no running backend');
  return victim;
}

const scenarios: Record<ScenarioName, (sb: Sandbox, out: Out) => Promise<Outcome>> = {
  ...sweepScenarios,
  async load(sb, out) {
    const max = sb.compute.emulator.getAutoscaler(region, 'backend-autoscaler').policy.maxNumReplicas;
    if (group(sb, 'backend').targetSize >= max) {
      // Earlier traffic left the group at its ceiling, where load cannot show a scale-out.
      out(`The backend group is at its maximum (${max}); letting it scale in first, without load.`);
      await scenarios['scale-in'](sb, out);
    }
    const before = group(sb, 'backend').targetSize;
    out(`Sending ~60 requests/s through the frontend for up to 90 s; backend group has ${before} instances.`);
    out('The backend autoscaler targets 15 requests/s per instance (HAProxy stats, read every 5 s).');
    const load = loadOn(sb, 60);
    const grown = await watch(out, 'the backend group to scale out', 90_000, async () => {
      const size = group(sb, 'backend').targetSize;
      return size > before ? size : undefined;
    });
    if (grown) {
      out(
        `Autoscaler raised the backend group ${before} -> ${grown}; waiting for the new instances to serve.`,
      );
      await watch(out, 'new backends passing in Consul', 90_000, async () =>
        (await passing(sb, services.backend.name)).length >= grown ? true : undefined,
      );
    }
    const result = await load.stop();
    const after = group(sb, 'backend').targetSize;
    const healthy = await passing(sb, services.backend.name);
    out(`Load: ${summary(result)}. Backend group now ${after}, ${healthy.length} passing in Consul.`);
    return { before, after, passing: healthy.length, ok: result.ok, failed: result.failed };
  },

  async 'scale-in'(sb, out) {
    const before = group(sb, 'backend').targetSize;
    const min = sb.compute.emulator.getAutoscaler(region, 'backend-autoscaler').policy.minNumReplicas;
    out(
      `No load now. Backend group has ${before}; the autoscaler scales in to ${min} after its stabilization window.`,
    );
    const shrunk = await watch(out, 'the backend group to scale in', 240_000, async () =>
      group(sb, 'backend').targetSize === min && members(sb, 'backend').length === min ? true : undefined,
    );
    // Consul's view settles a check interval later than the group's.
    await watch(out, `${min} backends passing in Consul`, 60_000, async () =>
      (await passing(sb, services.backend.name)).length === min ? true : undefined,
    );
    const healthy = await passing(sb, services.backend.name);
    out(
      shrunk
        ? `Scaled in ${before} -> ${min}; deleted instances ran their shutdown script (drain, consul leave). ${healthy.length} backends passing.`
        : `Did not scale in to ${min}.`,
    );
    return { before, after: group(sb, 'backend').targetSize, passing: healthy.length };
  },

  async 'kill-backend'(sb, out) {
    const victim = firstBackend(sb);
    out(
      `Crashing backend ${victim.name} (${victim.id}) in ${victim.zone}: its processes are killed; GCE restarts it (host error).`,
    );
    const load = loadOn(sb, 20);
    sb.compute.emulator.crash(victim.zone, victim.name);
    const critical = await watch(out, `${victim.name} to fail its Consul check`, 30_000, async () =>
      (await passing(sb, services.backend.name)).includes(victim.name) ? undefined : true,
    );
    out(
      critical
        ? `Consul marked ${victim.name} critical; HAProxy stopped sending it traffic.`
        : 'Consul never saw it fail.',
    );
    const back = await watch(out, `${victim.name} to pass again`, 90_000, async () =>
      (await passing(sb, services.backend.name)).includes(victim.name) ? true : undefined,
    );
    const result = await load.stop();
    out(
      `${victim.name} ${back ? 'restarted and passes again' : 'did not come back'}. Traffic meanwhile: ${summary(result)}.`,
    );
    return {
      instance: victim.name,
      sawCritical: !!critical,
      recovered: !!back,
      ok: result.ok,
      failed: result.failed,
    };
  },

  async preempt(sb, out) {
    const victim = firstBackend(sb);
    out(
      `Preempting backend ${victim.name} (${victim.id}): GCE gives its shutdown script 30 s, then stops it; the audit entry comes at once.`,
    );
    sb.compute.emulator.preempt(victim.zone, victim.name);
    out('Audit log: compute.instances.preempted -> Pub/Sub instance-events -> instanceEvents.');
    const gone = await watch(
      out,
      `the stale node ${victim.name}/${victim.id} to leave the catalog`,
      90_000,
      async () => {
        return (await catalogId(sb, victim.name)) !== victim.id ? true : undefined;
      },
    );
    out(
      gone
        ? `The node with id ${victim.id} is no longer in the catalog.`
        : 'The stale node is still registered.',
    );
    const replaced = await watch(out, `the MIG to recreate ${victim.name}`, 150_000, () =>
      registeredAgain(sb, victim),
    );
    out(
      replaced
        ? `The MIG recreated ${victim.name} with id ${replaced}; it registered itself.`
        : 'No replacement registered.',
    );
    return { instance: victim.name, oldId: victim.id, staleRemoved: !!gone, newId: replaced ?? null };
  },

  async 'recreate-same-name'(sb, out) {
    const victim = firstBackend(sb);
    out(`Recreating ${victim.name} (${victim.id}) through the MIG: same name, new id.`);
    sb.compute.emulator.actOnInstances(
      region,
      'backend',
      'recreateInstances',
      [`zones/${victim.zone}/instances/${victim.name}`],
      caller,
    );
    const newId = await watch(out, `${victim.name} back with a new id in Consul`, 150_000, () =>
      registeredAgain(sb, victim),
    );
    // The delete of the old id arrives after the new node registered: the orchestrator must not remove it.
    await sleep(15_000);
    const kept = (await catalogId(sb, victim.name)) === newId;
    out(
      newId
        ? `${victim.name} now has id ${newId}; ${kept ? "the node stayed registered after the old id's events" : 'the node was wrongly removed'}.`
        : 'The instance did not come back.',
    );
    return { instance: victim.name, oldId: victim.id, newId: newId ?? null, stillRegistered: kept };
  },

  async 'lose-consul-server'(sb, out) {
    const leader = await sb.consul.leader();
    out(
      `Killing the Consul leader ${leader.name} (${leader.ip}) as a crash would; 2 of 3 servers keep quorum.`,
    );
    await leader.kill();
    const next = await watch(out, 'a new leader', 60_000, async () => {
      const l = await sb.consul.leader();
      return l === leader ? undefined : l;
    });
    const res = await fetch(`${sb.frontendUrl()}?format=json`, { signal: AbortSignal.timeout(5000) }).catch(
      () => undefined,
    );
    const serving = res?.ok === true;
    const backends = await passing(sb, services.backend.name);
    out(
      `New leader: ${next?.name ?? 'none'}. Frontend ${serving ? 'still serves' : 'fails'}; ${backends.length} backends passing.`,
    );
    out(`Restarting ${leader.name} from its data dir, as a rebooted machine would.`);
    await leader.restart();
    // Autopilot calls a server healthy once it is alive in gossip and caught up with the raft log.
    const healthy = await watch(out, '3 healthy servers', 60_000, async () => {
      const { servers } = await sb.consul.read((c) => c.operator.autopilotHealth());
      return servers.filter((x) => x.healthy).length === 3 ? true : undefined;
    });
    out(healthy ? `${leader.name} rejoined: 3 healthy servers again.` : `${leader.name} did not rejoin.`);
    return {
      stopped: leader.name,
      newLeader: next?.name ?? null,
      serving,
      backends: backends.length,
      rejoined: healthy === true,
    };
  },
  ...alertScenarios,
};

export function isScenario(name: string): name is ScenarioName {
  return (scenarioNames as readonly string[]).includes(name);
}

export async function runScenario(sb: Sandbox, name: string, out: Out): Promise<Outcome> {
  if (!isScenario(name)) throw new Error(`unknown scenario ${name}; known: ${scenarioNames.join(', ')}`);
  const t0 = Date.now();
  out(`== scenario ${name}`);
  const outcome = await scenarios[name](sb, out);
  out(`== ${name} done in ${Math.round((Date.now() - t0) / 1000)} s: ${JSON.stringify(outcome)}`);
  return outcome;
}
