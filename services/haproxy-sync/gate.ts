/**
 * Pure: which rendered servers HAProxy may route to. The template already skips what the catalog
 * alone can refute (port, service address ≠ node address, no serfHealth, no instance id); this is
 * the second half, which the catalog cannot prove: a catalog write with a node-write token can forge
 * a passing `serfHealth` check (checked against Consul 1.15: the leader only reaps such a node at
 * its next reconcile), but not a gossip member. So a server is routed to only when its node is an
 * alive member of the local agent's LAN pool at that very address, and the address lies in the
 * tier's subnets; and a node has at most one server (its own token may register its service any
 * number of times), whatever the render says.
 */
import { inCidrs, type Cidr } from '../lib/proven-members';
import type { ConfigSlot, RenderedConfig } from './config';

export type SkipReason =
  | 'invalid-registration'
  | 'wrong-port'
  | 'address-not-node-address'
  | 'not-a-member'
  | 'no-instance-id'
  | 'duplicate-node'
  | 'outside-subnet'
  | 'member-address-differs'
  | 'rejected-line';

export const templateReasons: readonly SkipReason[] = [
  'invalid-registration',
  'wrong-port',
  'address-not-node-address',
  'not-a-member',
  'no-instance-id',
  'duplicate-node',
];

export interface RoutingPolicy {
  /** The tier's subnets; null: not configured, no subnet check. */
  cidrs: readonly Cidr[] | null;
  /** Alive LAN members by node name → gossip address; null: membership not required. */
  members: ReadonlyMap<string, string> | null;
}

export interface GatedSlot {
  slot: ConfigSlot;
  reason: SkipReason;
}

/** The enabled slots that fail the policy, and the slots HAProxy may run (failed ones left out). */
export function gateSlots(
  rendered: RenderedConfig,
  policy: RoutingPolicy,
): { slots: ConfigSlot[]; gated: GatedSlot[] } {
  const slots: ConfigSlot[] = [];
  const gated: GatedSlot[] = [];
  const nodes = new Set<string>();
  for (const slot of rendered.slots) {
    let reason = slot.enabled ? refusal(slot, policy) : undefined;
    // The first admitted slot of a node wins: the template's order, zone-local pool first.
    if (!reason && slot.enabled && slot.node !== undefined) {
      if (nodes.has(slot.node)) reason = 'duplicate-node';
      nodes.add(slot.node);
    }
    if (reason) gated.push({ slot, reason });
    else slots.push(slot);
  }
  return { slots, gated };
}

function refusal(slot: ConfigSlot, policy: RoutingPolicy): SkipReason | undefined {
  if (policy.cidrs && !inCidrs(slot.addr, policy.cidrs)) return 'outside-subnet';
  if (policy.members) {
    const addr = slot.node === undefined ? undefined : policy.members.get(slot.node);
    if (addr === undefined) return 'not-a-member';
    if (addr !== slot.addr) return 'member-address-differs';
  }
  return undefined;
}

/** Skipped registrations by reason: the template's comments, the parser's and the gate's refusals. */
export function skippedByReason(
  rendered: RenderedConfig,
  gated: readonly GatedSlot[],
): Record<string, number> {
  const counts: Record<string, number> = {};
  const add = (reason: string) => (counts[reason] = (counts[reason] ?? 0) + 1);
  for (const s of rendered.skipped) add(s.reason);
  for (const _ of rendered.rejected) add('rejected-line');
  for (const g of gated) add(g.reason);
  return counts;
}

/**
 * The text HAProxy may load: every rejected server line and every gated slot becomes its unused
 * placeholder (`127.0.0.1:1 disabled`), so one bad registration never blocks a reload and the
 * slot count, hence the structure, stays the same. A rejected line without a recognisable slot
 * name is dropped.
 */
export function sanitise(text: string, rendered: RenderedConfig, gated: readonly GatedSlot[]): string {
  const rejected = new Map(rendered.rejected.map((r) => [r.line, r.slot]));
  const refused = new Set(gated.map((g) => g.slot.name));
  if (rejected.size === 0 && refused.size === 0) return text;
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    const name = /^\s*server\s+([zb]\d{1,4})\s/.exec(line)?.[1];
    if (rejected.has(i + 1)) {
      const slot = rejected.get(i + 1);
      if (slot) out.push(placeholder(slot));
    } else if (name && refused.has(name)) out.push(placeholder(name));
    else out.push(line);
  });
  return out.join('\n');
}

const placeholder = (name: string) =>
  `    server ${name} 127.0.0.1:1${name.startsWith('b') ? ' backup' : ''} disabled`;
