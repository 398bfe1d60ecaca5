import { AnswerTooLargeError, type CatalogNode, type Member } from '../consul';
import { classifyError } from '../errors';
import { computeNamePattern } from '../membership';
import type { HealthSweepConfig } from './config';
import type { ReadOutcome } from './observe';
import type { ReadDeps } from './read';

/**
 * The bounded reads behind read.ts, for when one of its whole-catalog answers is over the Consul
 * layer's cap (a VM's own token may put unbounded metadata, tagged addresses and checks on its own
 * node): the same data node by node, each answer under a per-node cap, at most
 * `reads.maxNodeReads` of them. A node over its cap is *oversized*: its data unread, nothing acts
 * on it (plan.ts). Any other failure is a failed read (report-only).
 */

export const describe = (err: unknown): string => classifyError(err).message.slice(0, 300);

/**
 * Runs `work` over `items`, at most `limit` at once, in order of the results. Every runner ends
 * before it returns or throws (the first failure): no read outlives the sweep.
 */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  work: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i] as T);
    }
  });
  const failed = (await Promise.allSettled(runners)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return out;
}

/** The one checks read: its answer, or why it failed. */
export type ChecksRead = { checks: unknown[] } | { err: unknown };

/**
 * The checks of the one read, or when that was over the cap, of one read per listed node with the
 * per-node cap: a node over it is oversized (its checks unread), every other node is read in full.
 */
export async function readChecks(
  deps: ReadDeps,
  config: HealthSweepConfig,
  filter: string,
  whole: ChecksRead,
  listed: ReadonlyArray<{ name: string }> | undefined,
  reads: ReadOutcome[],
): Promise<{ checks: unknown[]; oversized: Set<string> }> {
  const oversized = new Set<string>();
  if ('checks' in whole) return { checks: whole.checks, oversized };
  const failed = (what: string, detail: string) =>
    reads.push({ source: 'consul', what, status: 'failed', detail });
  if (!(whole.err instanceof AnswerTooLargeError) || !listed) {
    failed('health/state/any', describe(whole.err));
    return { checks: [], oversized };
  }
  const names = [...new Set(listed.map((n) => n.name))];
  if (names.length > config.reads.maxNodeReads) {
    failed('health/state/any', `${describe(whole.err)}; ${names.length} nodes, over reads.maxNodeReads`);
    return { checks: [], oversized };
  }
  const perNode = await pool(names, deps.concurrency ?? 8, async (name) => {
    deps.calls.consul++;
    try {
      return await deps.consul.health.node(name, {
        filter,
        maxResponseBytes: config.reads.nodeChecksMaxBytes,
      });
    } catch (err) {
      if (err instanceof AnswerTooLargeError) oversized.add(name);
      else failed(`health/node/${name}`, describe(err));
      return [];
    }
  });
  return { checks: perNode.flat(), oversized };
}

/** The node listing: the catalog's, or the bounded one from the gossip pool (degraded). */
export interface NodeListing {
  nodes: CatalogNode[];
  /** Listed nodes whose entry was over `reads.nodeMaxBytes`: name and gossip address only. */
  oversized: Set<string>;
  /** Set when the nodes come from the gossip pool: catalog-only nodes are not among them. */
  degraded?: string;
}

/**
 * When `/v1/catalog/nodes` was over the cap: the names of the LAN gossip members (serf bounds each
 * member's tags to memberlist's `MetaMaxSize`, 512 bytes: https://pkg.go.dev/github.com/hashicorp/memberlist,
 * "Constants"; a catalog write cannot add a member), each read with `/v1/catalog/node/<name>` under
 * `reads.nodeMaxBytes`. A member without a catalog node is left out; one over the cap is listed
 * by name and gossip address, oversized. Without the members, or over `reads.maxNodeReads`
 * names, it fails like the read it replaces.
 */
export async function listFromMembers(
  deps: ReadDeps,
  config: HealthSweepConfig,
  err: unknown,
  members: readonly Member[] | undefined,
  reads: ReadOutcome[],
): Promise<NodeListing | undefined> {
  const failed = (what: string, detail: string) => {
    reads.push({ source: 'consul', what, status: 'failed', detail });
    return undefined;
  };
  if (!(err instanceof AnswerTooLargeError) || !members) return failed('catalog/nodes', describe(err));
  const addressOf = new Map<string, string>();
  for (const m of members) if (computeNamePattern.test(m.name)) addressOf.set(m.name, m.address);
  const names = [...addressOf.keys()].sort();
  if (names.length > config.reads.maxNodeReads)
    return failed('catalog/nodes', `${describe(err)}; ${names.length} members, over reads.maxNodeReads`);
  const oversized = new Set<string>();
  const read = await pool(names, deps.concurrency ?? 8, async (name): Promise<CatalogNode | null> => {
    deps.calls.consul++;
    try {
      const node = await deps.consul.catalog.node(name, { maxResponseBytes: config.reads.nodeMaxBytes });
      return node && node.name === name
        ? { name, address: node.address, meta: node.meta, modifyIndex: node.modifyIndex }
        : null;
    } catch (e) {
      if (!(e instanceof AnswerTooLargeError)) {
        failed(`catalog/node/${name}`, describe(e));
        return null;
      }
      oversized.add(name);
      // Its identity unread: a node of no instance, which nothing acts on (health 'unknown').
      return { name, address: addressOf.get(name) ?? '', meta: {}, modifyIndex: 0 };
    }
  });
  const nodes = read.filter((n): n is CatalogNode => n !== null);
  const degraded =
    `${describe(err)}: ${nodes.length} nodes listed from ${names.length} gossip members, ` +
    `${oversized.size} oversized; catalog-only nodes not seen this sweep`;
  return { nodes, oversized, degraded };
}
