/**
 * The event path as the latency bench watches it in a sandbox: the audit topic, the functions'
 * decisions, the backend group and HAProxy's routing.
 */
import { PubSub, type Message } from '@google-cloud/pubsub';
import { haproxyCommand, readRuntime } from '../../services/haproxy-sync/runtime';
import { parseStatsCsv } from '../../services/haproxy-sync/stats';
import { nodeMetaKeys, services } from '../../shared/contract';
import type { Instance } from '../../infra-scripts/local/compute-emulator/state';
import { sleep } from '../../infra-scripts/local/launch';
import type { Sandbox } from '../../infra-scripts/local/scenarios/sandbox';
import { sandboxRegion } from '../../infra-scripts/local/scenarios/topology';

/** The event path's stages, in the order the latency bench lists them. */
export const stages = [
  'published',
  'pulled by a subscriber',
  'function started',
  'function done',
  'last entry done',
  'first out of catalog',
  'out of catalog',
  'not alive in members',
  'gone from members',
  'HAProxy not routing',
] as const;
export type Stage = (typeof stages)[number];

const region = { kind: 'regions' as const, name: sandboxRegion };

/** One audit entry as the bench's own subscription on the sink's topic saw it. */
export interface Tapped {
  insertId: string;
  method: string;
  instanceId: string;
  phase: 'first' | 'last' | 'single';
  emittedAt: number;
  publishedAt: number;
  pulledAt: number;
}

/** instanceEvents' decision line for one target of one delivery. */
export interface Handled {
  eventId: string;
  reason: string;
  instanceId?: string;
  decision: string;
  action: string;
  doneAt: number;
  startedAt: number;
}

/** Every entry published on the audit topic, through a subscription of the bench's own. */
export async function tapAuditTopic(sb: Sandbox) {
  const pubsub = new PubSub({ projectId: sb.project, apiEndpoint: sb.pubsub.host, emulatorMode: true });
  const [sub] = await pubsub.topic('instance-events').createSubscription('bench-latency-tap');
  const seen: Tapped[] = [];
  sub.on('message', (m: Message) => {
    m.ack();
    try {
      const e = JSON.parse(m.data.toString('utf8')) as {
        insertId?: string;
        timestamp?: string;
        operation?: { first?: boolean; last?: boolean };
        protoPayload?: { methodName?: string };
        resource?: { labels?: { instance_id?: string } };
      };
      const op = e.operation ?? {};
      seen.push({
        insertId: e.insertId ?? '',
        method: e.protoPayload?.methodName ?? '',
        instanceId: e.resource?.labels?.instance_id ?? '',
        phase: op.first && op.last ? 'single' : op.first ? 'first' : 'last',
        emittedAt: Date.parse(e.timestamp ?? ''),
        publishedAt: m.publishTime.getTime(),
        pulledAt: Date.now(),
      });
    } catch {
      // Not an audit entry.
    }
  });
  return {
    seen,
    close: async () => {
      await sub.close();
      await pubsub.close();
    },
  };
}

/** Collects the functions' decision lines and redelivery causes as they appear in the action log. */
export function watchActions(sb: Sandbox) {
  const known = new WeakSet<object>();
  const handled: Handled[] = [];
  const retries = new Map<string, number>();
  const poll = () => {
    for (const a of sb.actions) {
      if (known.has(a)) continue;
      known.add(a);
      const d = a.detail as Record<string, unknown>;
      if (a.function !== 'instanceEvents') continue;
      if (a.decision === 'retry') {
        // Ids and numbers vary per message; the cause is the rest.
        const cause = String(d.reason ?? a.message)
          .replace(/[0-9a-f]{8,}|\d+/g, '#')
          .slice(0, 160);
        retries.set(cause, (retries.get(cause) ?? 0) + 1);
        continue;
      }
      if (typeof d.eventId !== 'string' || typeof d.latency !== 'number') continue;
      const doneAt = typeof d.time === 'number' ? d.time : Date.parse(a.at);
      handled.push({
        eventId: d.eventId,
        reason: String(d.reason ?? ''),
        instanceId: typeof d.instanceId === 'string' ? d.instanceId : undefined,
        decision: a.decision,
        action: String(d.action ?? ''),
        doneAt,
        startedAt: doneAt - d.latency,
      });
    }
  };
  const timer = setInterval(poll, 100);
  return {
    handled,
    retries,
    stop: () => {
      clearInterval(timer);
      poll();
    },
  };
}

export const running = (sb: Sandbox): Instance[] =>
  sb.compute.emulator
    .managedInstances(sb.compute.emulator.getIgm(region, 'backend'))
    .flatMap((m) =>
      m.instance && m.instance.status === 'RUNNING' && m.slot.action === 'NONE' ? [m.instance] : [],
    );

/** Where each HAProxy routes new requests: `backends` slots with their address and state. */
interface RoutedSlot {
  ip: string;
  /** Takes new requests: not in maintenance or drain, and UP by its health check. */
  routable: boolean;
}

/** Every running HAProxy's slots, through its runtime API (addresses) and `show stat` (check state). */
export async function haproxySlots(sb: Sandbox): Promise<RoutedSlot[][]> {
  return Promise.all(
    sb.haproxyAdminSockets().map(async (socket) => {
      const [slots, csv] = await Promise.all([
        readRuntime(socket, 'backends'),
        haproxyCommand(socket, 'show stat -1 4 -1'),
      ]);
      const status = new Map(
        parseStatsCsv(csv)
          .rows.filter((r) => r.pxname === 'backends')
          .map((r) => [r.svname, r.status ?? '']),
      );
      return slots.map((s) => ({
        ip: s.addr,
        // UP, or "UP 1/3" (still up, failing checks); "DOWN", "MAINT", "DRAIN", "NOLB" take none.
        routable: !s.maint && !s.drain && (status.get(s.name) ?? '').startsWith('UP'),
      }));
    }),
  );
}

export const routedBy = (slots: RoutedSlot[], ip: string) => slots.some((s) => s.ip === ip && s.routable);

/** What keeps the backend group from being steady (every member RUNNING, passing, routed); '' when steady. */
async function unsteady(sb: Sandbox, size: number): Promise<string> {
  const members = running(sb);
  if (members.length < size) return `${members.length}/${size} members running`;
  if (!(await sb.compute.emulator.settled(1))) return 'the group is not settled';
  const passing = await sb.consul.read((c) => c.health.service(services.backend.name, { passing: true }));
  const ids = new Set(passing.map((e) => e.Node.Meta?.[nodeMetaKeys.instanceId]));
  const unhealthy = members.filter((m) => !ids.has(m.id)).map((m) => m.name);
  if (unhealthy.length) return `not passing in Consul: ${unhealthy.join(', ')}`;
  const tables = await haproxySlots(sb);
  if (!tables.length) return 'no HAProxy runtime API';
  const unrouted = members.filter((m) => !tables.every((rows) => routedBy(rows, m.networkIP)));
  return unrouted.length ? `not routed by every HAProxy: ${unrouted.map((m) => m.name).join(', ')}` : '';
}

export async function waitSteady(sb: Sandbox, size: number): Promise<void> {
  const started = Date.now();
  let why = '';
  while (Date.now() - started < 180_000) {
    why = await unsteady(sb, size).catch((err: unknown) => String(err));
    if (!why) return;
    await sleep(500);
  }
  const tables = await haproxySlots(sb).catch(() => []);
  throw new Error(`backend group not steady after 180 s: ${why}; HAProxy slots ${JSON.stringify(tables)}`);
}
