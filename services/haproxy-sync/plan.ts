import type { ConfigSlot, Pool, RenderedConfig } from './config';
import type { RuntimeSlot } from './runtime';

export type SyncPlan =
  | { kind: 'noop' }
  | {
      kind: 'runtime';
      commands: string[];
      added: string[];
      removed: string[];
      drained: string[];
      undrained: string[];
    }
  | { kind: 'reload'; reason: string };

const key = (s: { addr: string; port: number }) => `${s.addr}:${s.port}`;

// The only commands haproxy-sync sends: a last check that no rendered value reached one unvalidated.
const safeCommand =
  /^set server [a-z]+\/[zb]\d{1,4} (?:state (?:ready|drain|maint)|health up|addr (?:\d{1,3}\.){3}\d{1,3} port \d{1,5})$/;
export const isSafeCommand = (command: string): boolean => safeCommand.test(command);

/**
 * Pure: the runtime-API commands that turn the running server list into the rendered one.
 * Departed servers go to maintenance (their in-flight requests finish); a new server takes a
 * slot that is in maintenance with no connection left, so an old server is never cut off.
 * A server whose node is on the drain list goes to `drain` (no new connections, existing ones
 * finish) and back to `ready` when it leaves the list.
 * A structural change, or more servers than free slots, asks for a hitless reload instead.
 */
export function planSync(
  backend: string,
  rendered: ConfigSlot[],
  running: RuntimeSlot[],
  structureChanged: boolean,
): SyncPlan {
  if (structureChanged) return { kind: 'reload', reason: 'configuration structure changed' };
  const commands: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  const drained: string[] = [];
  const undrained: string[] = [];
  for (const pool of ['z', 'b'] as Pool[]) {
    // addr:port -> drain; one address registered twice drains only if every entry says so.
    const wanted = new Map<string, boolean>();
    for (const s of rendered.filter((r) => r.pool === pool && r.enabled)) {
      wanted.set(key(s), (wanted.get(key(s)) ?? true) && s.drain);
    }
    const slots = running.filter((s) => s.pool === pool);
    const served = new Set<string>();
    const touched = new Set<string>();
    for (const slot of slots) {
      if (slot.maint) continue;
      if (wanted.has(key(slot)) && !served.has(key(slot))) {
        served.add(key(slot));
        const drain = wanted.get(key(slot)) ?? false;
        if (drain !== slot.drain) {
          commands.push(`set server ${backend}/${slot.name} state ${drain ? 'drain' : 'ready'}`);
          (drain ? drained : undrained).push(key(slot));
        }
        continue;
      }
      commands.push(`set server ${backend}/${slot.name} state maint`);
      removed.push(key(slot));
      touched.add(slot.name);
    }
    for (const [want, drain] of wanted) {
      if (served.has(want)) continue;
      const same = slots.find((s) => s.maint && key(s) === want && !touched.has(s.name));
      const free =
        same ?? slots.find((s) => s.maint && s.sessions === 0 && !touched.has(s.name) && !wanted.has(key(s)));
      if (!free) return { kind: 'reload', reason: `no free ${pool} slot for ${want}` };
      touched.add(free.name);
      served.add(want);
      added.push(want);
      const [addr, port] = [want.slice(0, want.lastIndexOf(':')), want.slice(want.lastIndexOf(':') + 1)];
      if (!same) commands.push(`set server ${backend}/${free.name} addr ${addr} port ${port}`);
      // Consul already saw it healthy; HAProxy's own checks take it out again if that is wrong.
      commands.push(
        `set server ${backend}/${free.name} state ${drain ? 'drain' : 'ready'}`,
        `set server ${backend}/${free.name} health up`,
      );
      if (drain) drained.push(want);
    }
  }
  return commands.length
    ? { kind: 'runtime', commands, added, removed, drained, undrained }
    : { kind: 'noop' };
}

const slotLine = /^server [zb]\d{1,4}$/;

/**
 * Pure: why the render needs a reload, or undefined when the running worker can take it live: the
 * config outside the server slots differs from the applied one, or a pool has more rendered slots
 * than the worker runs. Fewer rendered slots is not a reason: the extra ones stay in maintenance,
 * so a membership flapping across a step of 8 costs one reload, not one per flap.
 */
export function structureChange(
  applied: RenderedConfig,
  rendered: RenderedConfig,
  running: RuntimeSlot[],
): string | undefined {
  const frame = (c: RenderedConfig) =>
    c.structure
      .split('\n')
      .filter((l) => !slotLine.test(l))
      .join('\n');
  if (frame(applied) !== frame(rendered)) return 'configuration structure changed';
  for (const pool of ['z', 'b'] as Pool[]) {
    const want = rendered.slots.filter((s) => s.pool === pool).length;
    const have = running.filter((s) => s.pool === pool).length;
    if (want > have) return `${want} ${pool} slots rendered, ${have} running`;
  }
  return undefined;
}
