/**
 * What the failure suite measures in a live sandbox, each read from the real services: HAProxy's
 * routing (its stats CSV) against Consul's passing backends of running instances, the Consul catalog
 * against the emulator's membership, autoscaler bounds, and the audit events published against the
 * instanceEvents decisions logged for them.
 */
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { checkIds, kvPrefixes, managedRoles, nodeMetaKeys, services } from '../../shared/contract';
import { readRuntime } from '../../services/haproxy-sync/runtime';
import { parseStatsCsv } from '../../services/haproxy-sync/stats';
import type { Sandbox } from '../../infra-scripts/local/scenarios/sandbox';
import type { ActionLog } from '../../infra-scripts/local/status-page/server';

export interface Check {
  ok: boolean;
  /** What differs, for the report; empty when ok. */
  detail: string;
}

const running = (sb: Sandbox) => sb.compute.emulator.allInstances().filter((i) => i.status === 'RUNNING');

interface ConsulNodes {
  meta: Map<string, Record<string, string>>;
  /** Node name → every check it has passing (Consul's "passing"). */
  healthy: Map<string, boolean>;
  /** Node names without a serfHealth check: the servers do not count them as gossip members. */
  serfless: Set<string>;
  /** Node name → check statuses by service name ('' for node checks). */
  serviceOk: Map<string, Map<string, boolean>>;
}

async function consulNodes(sb: Sandbox): Promise<ConsulNodes> {
  const [nodes, checks] = await sb.consul.read((c) =>
    Promise.all([c.catalog.nodes(), c.health.state('any')]),
  );
  const meta = new Map(nodes.map((n) => [n.name, n.meta]));
  const healthy = new Map<string, boolean>();
  const serviceOk = new Map<string, Map<string, boolean>>();
  const serfless = new Set<string>();
  for (const n of nodes) {
    const own = checks.filter((c) => c.Node === n.name);
    if (!own.some((c) => c.CheckID === checkIds.serfHealth)) serfless.add(n.name);
    healthy.set(
      n.name,
      own.every((c) => c.Status === 'passing'),
    );
    const bySvc = new Map<string, boolean>();
    for (const c of own) {
      const svc = c.ServiceName ?? '';
      bySvc.set(svc, (bySvc.get(svc) ?? true) && c.Status === 'passing');
    }
    serviceOk.set(n.name, bySvc);
  }
  return { meta, healthy, serviceOk, serfless };
}

/** Node names the drain list holds for their current instance id. */
async function drained(sb: Sandbox): Promise<Set<string>> {
  const prefix = kvPrefixes().draining;
  const out = new Set<string>();
  const keys = await sb.consul.read((c) => c.kv.keys(prefix));
  for (const key of keys) {
    const entry = await sb.consul.read((c) => c.kv.get(key));
    try {
      const value = JSON.parse(entry?.value ?? '') as { instanceId?: unknown };
      if (typeof value.instanceId === 'string') out.add(`${key.slice(prefix.length)}/${value.instanceId}`);
    } catch {
      // Not a drain entry: HAProxy ignores it too.
    }
  }
  return out;
}

/**
 * Routing is correct when every HAProxy in service (running, its Consul service passing) routes
 * exactly to the backends of running instances whose node passes every check, carries their id (or
 * no id yet: the leader may register a joining member before its metadata) and is not on the drain
 * list.
 */
export async function routing(sb: Sandbox): Promise<Check> {
  const [nodes, drain] = await Promise.all([consulNodes(sb), drained(sb)]);
  const live = running(sb);
  const expected = live
    .filter(
      (i) =>
        i.labels.role === 'backend' &&
        [i.id, undefined].includes(nodes.meta.get(i.name)?.[nodeMetaKeys.instanceId]) &&
        nodes.healthy.get(i.name) === true &&
        !drain.has(`${i.name}/${i.id}`),
    )
    .map((i) => i.networkIP)
    .sort();
  const haproxies = live.filter(
    (i) =>
      i.labels.role === 'haproxy' &&
      nodes.meta.get(i.name)?.[nodeMetaKeys.instanceId] === i.id &&
      nodes.healthy.get(i.name) === true &&
      nodes.serviceOk.get(i.name)?.get(services.haproxy.name) === true,
  );
  if (haproxies.length === 0) return { ok: false, detail: 'no HAProxy in service' };
  const explain = (ip: string) => {
    const i = live.find((x) => x.networkIP === ip);
    if (!i) return `${ip}: no running instance`;
    const checks = [...(nodes.serviceOk.get(i.name) ?? [])].map(
      ([svc, ok]) => `${svc || 'node'}=${ok ? 'passing' : 'not passing'}`,
    );
    return `${ip} ${i.name}/${i.id}: catalog id ${nodes.meta.get(i.name)?.[nodeMetaKeys.instanceId] ?? 'none'}, ${checks.join(' ') || 'no checks'}${drain.has(`${i.name}/${i.id}`) ? ', drained' : ''}`;
  };
  const problems: string[] = [];
  for (const h of haproxies) {
    const res = await fetch(`http://${h.networkIP}:8404/stats;csv`, {
      signal: AbortSignal.timeout(2000),
    }).catch(() => undefined);
    if (!res?.ok) {
      problems.push(`${h.name}: stats unreadable`);
      continue;
    }
    // The stats page hides addresses; the admin socket maps each slot to the backend it holds.
    const up = new Set(
      parseStatsCsv(await res.text())
        .rows.filter(
          (r) => r.pxname === 'backends' && (r.status?.startsWith('UP') === true || r.status === 'no check'),
        )
        .map((r) => r.svname),
    );
    const root = sb.instanceRoot(h.id);
    const slots = root
      ? await readRuntime(`${root}/run/haproxy/admin.sock`, 'backends').catch(() => undefined)
      : undefined;
    if (!slots) {
      problems.push(`${h.name}: admin socket unreadable`);
      continue;
    }
    const routed = slots
      .filter((s) => up.has(s.name) && !s.maint && !s.drain && s.addr !== '127.0.0.1')
      .map((s) => s.addr)
      .sort();
    if (routed.join() !== expected.join())
      problems.push(
        `${h.name} routes [${routed.join(' ')}], expected [${expected.join(' ')}]` +
          ` (${[...new Set([...routed, ...expected])]
            .filter((ip) => !(routed.includes(ip) && expected.includes(ip)))
            .map((ip) => explain(ip))
            .join(', ')})`,
      );
  }
  return { ok: problems.length === 0, detail: problems.join('; ') };
}

/**
 * The catalog's managed-role nodes equal the running instances, each with its own instance id.
 * `serfless` names nodes that match but lack serfHealth (no failure detection for them).
 */
export async function membership(sb: Sandbox): Promise<Check & { serfless: string[] }> {
  const nodes = await consulNodes(sb);
  const isManaged = (name: string) => managedRoles.some((r) => name.startsWith(`${r}-`));
  const want = running(sb)
    .filter((i) => isManaged(i.name))
    .map((i) => `${i.name}/${i.id}`)
    .sort();
  const have = [...nodes.meta]
    .filter(([name]) => isManaged(name))
    .map(([name, meta]) => `${name}/${meta[nodeMetaKeys.instanceId] ?? 'no-id'}`)
    .sort();
  const missing = want.filter((w) => !have.includes(w));
  const extra = have.filter((h) => !want.includes(h));
  const detail = [
    missing.length ? `not in the catalog: ${missing.join(' ')}` : '',
    extra.length ? `in the catalog only: ${extra.join(' ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return { ok: !detail, detail, serfless: [...nodes.serfless].filter(isManaged) };
}

/** Every autoscaler's group within min ≤ target size ≤ max. */
export function bounds(sb: Sandbox): Check {
  const emu = sb.compute.emulator;
  const problems: string[] = [];
  for (const a of emu.allAutoscalers()) {
    const igm = emu.getIgm(a.scope, a.target.split('/').pop()!);
    const { minNumReplicas: min = 0, maxNumReplicas: max } = a.policy;
    if (igm.targetSize < min || igm.targetSize > max)
      problems.push(`${a.name}: size ${igm.targetSize} outside [${min}, ${max}]`);
  }
  return { ok: problems.length === 0, detail: problems.join('; ') };
}

/**
 * Audit entries published to `instance-events` (seen by a tap subscription of our own, by insertId)
 * against the instanceEvents decisions logged for them. A decision other than `retry`/`failed`
 * settles an entry; entries the emulator could not publish at all are counted from its error log.
 */
export class EventLedger {
  /** insertId → when the tap first saw it. */
  readonly published = new Map<string, number>();
  /** insertId → the settling decision. */
  readonly settled = new Map<string, string>();
  messages = 0;
  retries = 0;
  /** Every instanceEvents decision seen: when, and its log message. */
  readonly log: { at: number; line: string }[] = [];
  private readonly seen = new WeakSet<object>();
  private client: PubSub | undefined;
  private sub: Subscription | undefined;
  private poller: NodeJS.Timeout | undefined;

  constructor(
    private readonly projectId: string,
    private readonly topic: string,
    readonly subscription: string,
    private readonly actions: ActionLog,
  ) {}

  /** Opens the tap on the emulator at `host` (again, after a restart). */
  async open(host: string): Promise<void> {
    await this.closeTap();
    this.client = new PubSub({ projectId: this.projectId, apiEndpoint: host, emulatorMode: true });
    const [exists] = await this.client.subscription(this.subscription).exists();
    if (!exists) await this.client.topic(this.topic).createSubscription(this.subscription);
    this.sub = this.client.subscription(this.subscription);
    this.sub.on('message', (m: Message) => {
      this.messages++;
      try {
        const entry = JSON.parse(m.data.toString('utf8')) as { insertId?: unknown };
        if (typeof entry.insertId === 'string' && !this.published.has(entry.insertId))
          this.published.set(entry.insertId, Date.now());
      } catch {
        // Not an audit entry; instanceEvents acknowledges those itself.
      }
      m.ack();
    });
    this.sub.on('error', () => undefined);
    // The functions host keeps only the latest 200 actions: read them often.
    this.poller ??= setInterval(() => this.collect(), 250);
  }

  collect(): void {
    for (const a of this.actions) {
      if (this.seen.has(a) || a.function !== 'instanceEvents') continue;
      this.seen.add(a);
      const d = (typeof a.detail === 'object' && a.detail !== null ? a.detail : {}) as Record<
        string,
        unknown
      >;
      const id =
        typeof d.insertId === 'string'
          ? d.insertId
          : typeof d.eventId === 'string'
            ? d.eventId.split('/')[0]
            : undefined;
      this.log.push({ at: Date.now(), line: `${a.decision}: ${a.message}` });
      if (a.decision === 'retry' || a.decision === 'failed') this.retries++;
      else if (id !== undefined && !this.settled.has(id)) this.settled.set(id, a.decision);
    }
  }

  /** Entries published at or after `since` with no settling decision yet. */
  outstanding(since = 0): string[] {
    this.collect();
    return [...this.published].filter(([id, at]) => at >= since && !this.settled.has(id)).map(([id]) => id);
  }

  publishedSince(since: number): number {
    return [...this.published.values()].filter((at) => at >= since).length;
  }

  private async closeTap(): Promise<void> {
    const sub = this.sub;
    const client = this.client;
    this.sub = undefined;
    this.client = undefined;
    await sub?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    await this.closeTap();
  }
}
