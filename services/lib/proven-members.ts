/**
 * What a catalog write cannot forge, shared by haproxy-sync (which backends HAProxy routes to) and
 * the frontend (which HAProxy addresses it uses): the tier's configured subnets, and the local
 * agent's gossip view of alive members. Any node's token can set a service address, or register
 * the same one again; it cannot make an address a gossip member.
 */
import { isIPv4 } from 'node:net';

import type { ConsulClient } from '../../shared/consul';
import type { Logger } from '../../shared/logging';

export interface Cidr {
  base: number;
  bits: number;
}

const toInt = (ip: string): number => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);

/** `10.0.2.0/24,10.1.0.0/16` → CIDRs; throws on anything else (the daemon then does not start). */
export function parseCidrs(list: string): Cidr[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^([0-9.]{7,15})\/(\d{1,2})$/.exec(entry);
      const bits = Number(m?.[2]);
      if (!m || !isIPv4(m[1]!) || bits > 32) throw new Error(`not an IPv4 CIDR: ${entry.slice(0, 40)}`);
      return { base: toInt(m[1]!), bits };
    });
}

export function inCidrs(ip: string, cidrs: readonly Cidr[]): boolean {
  if (!isIPv4(ip)) return false;
  const n = toInt(ip);
  // Division, not bit shifts: JavaScript's shifts are 32-bit signed.
  return cidrs.some((c) => Math.floor(n / 2 ** (32 - c.bits)) === Math.floor(c.base / 2 ** (32 - c.bits)));
}

/** Serf's member status for an alive member (2 leaving, 3 left, 4 failed). */
const alive = 1;

/**
 * Alive LAN members (node name → gossip address) from the local agent, asked on every call. If the
 * agent does not answer, the last answer stands for `staleMs`, then nothing is a member: a caller
 * routes to nothing new rather than to something unproven.
 */
export function aliveMembers(
  agent: Pick<ConsulClient, 'agent'>,
  logger: Logger,
  staleMs = 60_000,
  now: () => number = Date.now,
): () => Promise<Map<string, string>> {
  let last: { at: number; members: Map<string, string> } | undefined;
  let failing = false;
  return async () => {
    try {
      const members = await agent.agent.members();
      last = {
        at: now(),
        members: new Map(members.filter((m) => m.status === alive).map((m) => [m.name, m.address])),
      };
      if (failing) logger.info('local agent members readable again');
      failing = false;
    } catch (err) {
      if (!failing) logger.warn({ err }, 'local agent members unreadable; using the last answer');
      failing = true;
      if (last && now() - last.at > staleMs) last = undefined;
    }
    return last?.members ?? new Map<string, string>();
  };
}
