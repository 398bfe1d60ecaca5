/**
 * The alert scenarios `alert-open`, `alert-close` and `alert-lost-close`, against the policy and
 * channel `alert-setup.ts` creates. Each scenario returns a timeline (open → schedule → group size
 * → close) with seconds since it began.
 */
import { type Load, startLoad } from '../load';
import { scheduleState } from '../compute-emulator/autoscaling';
import { sleep } from '../launch';
import { alertPolicyName, alertThreshold, leaseSec, schedulePrefix } from './alert-setup';
import type { Sandbox } from './sandbox';
import { sandboxProject, sandboxRegion } from './topology';
import type { Out, Outcome } from './watch';

const region = { kind: 'regions' as const, name: sandboxRegion };

/** Enables or disables the sandbox's alert policy, as `gcloud alpha monitoring policies update` would. */
async function setPolicyEnabled(sb: Sandbox, enabled: boolean): Promise<void> {
  const base = `${sb.compute.url}/v3/projects/${sandboxProject}/alertPolicies`;
  const { alertPolicies } = (await (await fetch(base)).json()) as {
    alertPolicies: { name: string; displayName: string }[];
  };
  const policy = alertPolicies.find((p) => p.displayName === alertPolicyName);
  if (!policy) throw new Error(`no alert policy ${alertPolicyName}`);
  const res = await fetch(`${sb.compute.url}/v3/${policy.name}?updateMask=enabled`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ enabled }),
  });
  if (!res.ok) throw new Error(`${policy.name}: ${res.status} ${await res.text()}`);
}

// ---- observation ----

type Event = { t: number; event: string };

class Timeline {
  readonly events: Event[] = [];
  private readonly t0 = Date.now();
  constructor(private readonly out: Out) {}
  add(event: string) {
    const t = Math.round((Date.now() - this.t0) / 1000);
    this.events.push({ t, event });
    this.out(`  [+${t}s] ${event}`);
  }
}

const haproxyAutoscaler = (sb: Sandbox) => sb.compute.emulator.getAutoscaler(region, 'haproxy-autoscaler');
const haproxyGroup = (sb: Sandbox) => sb.compute.emulator.getIgm(region, 'haproxy');
const runningHaproxies = (sb: Sandbox) =>
  sb.compute.emulator
    .managedInstances(haproxyGroup(sb))
    .filter((m) => m.instance?.status === 'RUNNING' && m.slot.action === 'NONE').length;

/** Our schedules on the haproxy autoscaler and the floor the active ones hold (undefined: none). */
function floorState(sb: Sandbox) {
  const policy = haproxyAutoscaler(sb).policy;
  const ours = Object.keys(policy.scalingSchedules ?? {}).filter((n) => n.startsWith(schedulePrefix));
  const { minimum } = scheduleState(
    { ...policy, scalingSchedules: Object.fromEntries(ours.map((n) => [n, policy.scalingSchedules![n]!])) },
    Date.now(),
  );
  return { schedules: ours, floor: minimum, min: policy.minNumReplicas };
}

const incidents = (sb: Sandbox) =>
  (sb.compute.alerting?.incidents() ?? []).filter((i) => i.resource.type === 'gce_instance');
const openIncidents = (sb: Sandbox) => incidents(sb).filter((i) => i.state === 'open');

/** Polls `check` every second until it returns a value or `ms` pass, noting it on the timeline. */
async function until<T>(
  tl: Timeline,
  what: string,
  ms: number,
  check: () => T | undefined,
): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      tl.add(`gave up waiting for ${what} after ${Math.round(ms / 1000)} s`);
      return undefined;
    }
    await sleep(1000);
  }
}

const loads = new WeakMap<Sandbox, Load>();

function startHaproxyLoad(sb: Sandbox): Load {
  const url = new URL(sb.frontendUrl() ?? 'http://127.0.0.1:1/');
  const load = startLoad({
    host: url.hostname,
    port: Number(url.port || 80),
    path: '/?format=json',
    concurrency: 4,
    ratePerSec: 25,
    timeoutMs: 5000,
  });
  loads.set(sb, load);
  return load;
}

async function stopLoad(sb: Sandbox): Promise<string | undefined> {
  const load = loads.get(sb);
  if (!load) return undefined;
  loads.delete(sb);
  const r = await load.stop();
  return `${r.ok} ok, ${r.failed} failed in ${Math.round(r.durationMs / 1000)} s`;
}

/** Load until an incident opens, scalingAlerts schedules the floor and the haproxy group grows. */
async function open(sb: Sandbox, tl: Timeline): Promise<Outcome> {
  if (!sb.compute.alerting) throw new Error('the sandbox runs without Monitoring alerting');
  const before = haproxyGroup(sb).targetSize;
  const known = new Set(incidents(sb).map((i) => i.id));
  await setPolicyEnabled(sb, true);
  tl.add(
    `alert policy enabled; load ~25 requests/s through the frontend; haproxy group ${before}, floor ${floorState(sb).min}`,
  );
  if (!loads.has(sb)) startHaproxyLoad(sb);
  const incident = await until(tl, 'an incident to open', 150_000, () =>
    openIncidents(sb).find((i) => !known.has(i.id)),
  );
  if (incident)
    tl.add(
      `incident ${incident.id} open (${incident.resource.labels.instance_id}, mean ${incident.observed.toFixed(1)}/s > ${alertThreshold})`,
    );
  const floor = await until(tl, 'the leased floor', 90_000, () => {
    const f = floorState(sb);
    return f.floor !== undefined && f.floor > f.min ? f : undefined;
  });
  if (floor) tl.add(`schedule ${floor.schedules.join(', ')} active: floor ${floor.min} -> ${floor.floor}`);
  const grown = await until(tl, 'the haproxy group to grow', 120_000, () => {
    const size = haproxyGroup(sb).targetSize;
    return size > before ? size : undefined;
  });
  if (grown) {
    tl.add(`haproxy group target size ${before} -> ${grown}`);
    const running = await until(tl, `${grown} haproxy instances running`, 150_000, () =>
      runningHaproxies(sb) >= grown ? runningHaproxies(sb) : undefined,
    );
    if (running) tl.add(`${running} haproxy instances running`);
  }
  return {
    incidents: openIncidents(sb).map((i) => i.id),
    floor: floor?.floor ?? null,
    before,
    after: haproxyGroup(sb).targetSize,
    timeline: tl.events,
  };
}

export const alertScenarios: Record<
  'alert-open' | 'alert-close' | 'alert-lost-close',
  (sb: Sandbox, out: Out) => Promise<Outcome>
> = {
  async 'alert-open'(sb, out) {
    out('The load keeps running after this scenario; alert-close stops it.');
    return open(sb, new Timeline(out));
  },

  async 'alert-close'(sb, out) {
    const tl = new Timeline(out);
    const open = openIncidents(sb).map((i) => i.id);
    const stopped = await stopLoad(sb);
    tl.add(
      `load stopped${stopped ? ` (${stopped})` : ' (none was running)'}; open incidents: ${open.join(', ') || 'none'}`,
    );
    const closed = await until(tl, 'the incidents to close', 150_000, () =>
      openIncidents(sb).length === 0 ? true : undefined,
    );
    if (closed) tl.add('incidents closed; closed notifications published');
    await setPolicyEnabled(sb, false);
    const gone = await until(tl, 'the schedules to be removed', 90_000, () =>
      floorState(sb).schedules.length === 0 ? true : undefined,
    );
    if (gone) tl.add(`schedules removed by scalingAlerts: floor back to ${floorState(sb).min}`);
    const min = floorState(sb).min;
    const shrunk = await until(tl, `the haproxy group back to ${min}`, 180_000, () =>
      haproxyGroup(sb).targetSize <= min ? true : undefined,
    );
    if (shrunk) tl.add(`haproxy group back to ${haproxyGroup(sb).targetSize}`);
    return {
      closed: !!closed,
      schedulesRemoved: !!gone,
      size: haproxyGroup(sb).targetSize,
      timeline: tl.events,
    };
  },

  async 'alert-lost-close'(sb, out) {
    const tl = new Timeline(out);
    const opened = await open(sb, tl);
    sb.compute.alerting!.dropNotifications('closed', 10);
    tl.add('the channel now loses closed notifications');
    const stopped = await stopLoad(sb);
    tl.add(`load stopped (${stopped ?? 'none'})`);
    const closed = await until(tl, 'the incidents to close', 150_000, () =>
      openIncidents(sb).length === 0 ? true : undefined,
    );
    const dropped = sb.compute.alerting!.deliveries().filter((d) => d.dropped).length;
    if (closed) tl.add(`incidents closed in Monitoring; ${dropped} closed notification(s) dropped`);
    await setPolicyEnabled(sb, false);
    const scheduled = floorState(sb).schedules;
    const expired = await until(tl, 'the lease to expire', (leaseSec + 180) * 1000, () =>
      floorState(sb).floor === undefined ? true : undefined,
    );
    if (expired)
      tl.add(
        `schedule ended in GCE by itself (still listed: ${floorState(sb).schedules.join(', ') || 'none'}): floor back to ${floorState(sb).min}`,
      );
    sb.compute.alerting!.clearFaults();
    return {
      opened: opened.floor !== null,
      dropped,
      schedules: scheduled,
      expired: !!expired,
      floorAfter: floorState(sb).floor ?? floorState(sb).min,
      size: haproxyGroup(sb).targetSize,
      timeline: tl.events,
    };
  },
};
