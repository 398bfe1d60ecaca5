/** What an HAProxy routes, read through its runtime API, and when a membership change showed. */
import { haproxyCommand } from '../../services/haproxy-sync/runtime';
import { sleep } from '../../infra-scripts/local/launch';
import type { Load } from '../../infra-scripts/local/load';

export interface Change {
  at: number;
  name: string;
  out: boolean;
}

/**
 * Pure: how long each change took to show in the traffic: the last answer from a removed backend,
 * or the first from a returning one, after the change (Consul, quiescence, apply, all included).
 */
export function effectDelays(answers: [number, string][], changes: Change[]): number[] {
  return changes.map((change, i) => {
    const until = changes[i + 1]?.at ?? Infinity;
    const from = answers.filter(([t, name]) => name === change.name && t >= change.at && t < until);
    if (change.out) return from.length ? from[from.length - 1]![0] - change.at : 0;
    return from.length ? from[0]![0] - change.at : NaN;
  });
}

/** A server as `show servers state` lists it. */
interface ServerState {
  addr: string;
  /** srv_op_state: 0 stopped (down), 2 running. */
  op: number;
  /** srv_admin_state's maintenance bits (forced, inherited, resolver). */
  maint: boolean;
}

/** Pure: `show servers state <backend>` by its header's column names. */
export function parseServerStates(answer: string): ServerState[] {
  const lines = answer.split('\n').filter((l) => l.trim());
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) throw new Error(`unexpected answer: ${answer.slice(0, 100)}`);
  const cols = header.slice(2).trim().split(/\s+/);
  const [iAddr, iOp, iAdmin] = ['srv_addr', 'srv_op_state', 'srv_admin_state'].map((c) => cols.indexOf(c));
  return lines
    .filter((l) => !l.startsWith('#') && /\s/.test(l))
    .map((l) => l.trim().split(/\s+/))
    .map((f) => ({
      addr: f[iAddr!] ?? '',
      op: Number(f[iOp!]),
      maint: (Number(f[iAdmin!]) & 0x23) !== 0,
    }));
}

/** One HAProxy under test, with the loads sent through it. */
export interface Way {
  label: string;
  host: string;
  adminSocket: string;
  get?: Load;
  post?: Load;
}

/**
 * Whether `ip` takes requests in this HAProxy (`listed`: whether its config or runtime API still
 * lists it, health checks aside); undefined while HAProxy does not answer (a restart).
 */
async function routes(way: Way, ip: string, listed = false): Promise<boolean | undefined> {
  const answer = await haproxyCommand(way.adminSocket, 'show servers state backends', 1_000).catch(() => '');
  let states: ServerState[];
  try {
    states = parseServerStates(answer);
  } catch {
    return undefined;
  }
  return states.some((s) => s.addr === ip && !s.maint && (listed || s.op !== 0));
}

/** Time from `t0` until `ip` is (or is no longer) routed by `way`; polled every 10 ms. */
export async function until(
  way: Way,
  ip: string,
  routed: boolean,
  t0: number,
  timeoutMs: number,
  listed = false,
): Promise<number> {
  const deadline = t0 + timeoutMs;
  while (performance.now() < deadline) {
    if ((await routes(way, ip, listed)) === routed) return performance.now() - t0;
    await sleep(10);
  }
  return NaN;
}
