/**
 * Which of Consul DNS's answers for the HAProxy tier the frontend may use. An answer is a service
 * address, which an HAProxy VM's own token sets to anything and may register any number of times;
 * so an address is used only when it lies in the tier's subnets and is an alive gossip member's
 * address (services/lib/proven-members.ts), and only once.
 */
import type { Logger } from '../../shared/logging';
import { inCidrs, type Cidr } from '../lib/proven-members';

export interface AddressPolicy {
  /** The HAProxy tier's subnets; null: not configured, no subnet check. */
  cidrs: readonly Cidr[] | null;
  /** Alive members' gossip addresses. */
  members: ReadonlySet<string>;
}

export type AddressSkipReason = 'outside-subnet' | 'not-a-member' | 'duplicate';

export interface SkippedAddress {
  address: string;
  reason: AddressSkipReason;
}

/** Pure: the answers to use, in their order, and the ones left out with why. */
export function selectAddresses(
  answers: readonly string[],
  policy: AddressPolicy,
): { use: string[]; skipped: SkippedAddress[] } {
  const use: string[] = [];
  const skipped: SkippedAddress[] = [];
  for (const address of answers) {
    const reason: AddressSkipReason | undefined = use.includes(address)
      ? 'duplicate'
      : policy.cidrs && !inCidrs(address, policy.cidrs)
        ? 'outside-subnet'
        : !policy.members.has(address)
          ? 'not-a-member'
          : undefined;
    if (reason) skipped.push({ address, reason });
    else use.push(address);
  }
  return { use, skipped };
}

export type SkipReport = (name: string, skipped: readonly SkippedAddress[]) => void;

/**
 * A resolver that answers only proven addresses. The policy is asked per lookup: membership is the
 * local agent's current view, as haproxy-sync's is.
 */
export function provenResolve(
  resolve: (name: string) => Promise<string[]>,
  policy: () => Promise<AddressPolicy>,
  report: SkipReport,
): (name: string) => Promise<string[]> {
  return async (name) => {
    const [answers, current] = await Promise.all([resolve(name), policy()]);
    const { use, skipped } = selectAddresses(answers, current);
    report(name, skipped);
    return use;
  };
}

/**
 * Logs what was skipped, by reason (`routing_skipped{reason}`, as haproxy-sync logs it), when it
 * changes for a name: one line per change, not one per request.
 */
export function skipLogger(logger: Logger): SkipReport {
  const last = new Map<string, string>();
  return (name, skipped) => {
    // DNS answers come in a random order: the same set is the same report.
    const key = JSON.stringify(skipped.map((s) => `${s.reason} ${s.address}`).sort());
    if (last.get(name) === key) return;
    // Only the names the frontend asks for (two), so the map stays small.
    last.set(name, key);
    const counts: Record<string, number> = {};
    for (const s of skipped) counts[s.reason] = (counts[s.reason] ?? 0) + 1;
    if (skipped.length)
      logger.warn(
        { name, routing_skipped: counts, skipped: skipped.slice(0, 20) },
        'HAProxy addresses skipped',
      );
    else logger.info({ name, routing_skipped: counts }, 'no HAProxy address skipped');
  };
}
