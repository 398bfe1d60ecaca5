import type { LogEntry } from './audit-log';

/**
 * What a real log sink does to deliveries now and then, on demand: Pub/Sub delivers at least once
 * (duplicates), in no particular order (a `last` before its `first`), and late. Off unless asked for.
 */
export interface AuditFaults {
  /** Probability (0..1) that an entry is delivered twice. */
  duplicate?: number;
  /** Probability (0..1) that an activity `first` entry is held back until its `last` was delivered. */
  reorder?: number;
  /** Each delivery first waits a random 0..delayMs. */
  delayMs?: number;
  /** The longest a held-back `first` waits for its `last` (default 10 s). */
  holdMs?: number;
  /** Seeds the random choices: the same entries in the same order meet the same faults. */
  seed?: number;
}

export type Writer = (entry: LogEntry) => Promise<void>;

export interface FaultyWriter {
  write: Writer;
  /** Delivers whatever is still held back or on its way. */
  flush(): Promise<void>;
}

/** mulberry32: small, fast and good enough to pick faults reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Plan {
  entry: LogEntry;
  delayMs: number;
  duplicate: boolean;
}

const operationOf = (entry: LogEntry): { id?: unknown; first?: unknown; last?: unknown } =>
  typeof entry.operation === 'object' && entry.operation !== null
    ? (entry.operation as { id?: unknown; first?: unknown; last?: unknown })
    : {};

/**
 * Wraps a sink's write with the faults asked for. Every random choice for an entry is drawn when it
 * is written, so a seed fixes which entries are duplicated, delayed and reordered. A delayed entry
 * is on its way on its own, as a real sink's entries are: it holds back no later entry (that would
 * add its delay to theirs). Errors of deliveries that no caller awaits go to `onError`.
 */
export function faultyAudit(
  write: Writer,
  faults: AuditFaults,
  onError: (err: unknown) => void = () => undefined,
): FaultyWriter {
  const random = seededRandom(faults.seed ?? 1);
  const held = new Map<string, { plan: Plan; timer: NodeJS.Timeout }>();
  const inflight = new Set<Promise<void>>();

  const deliver = async (p: Plan) => {
    if (p.delayMs > 0) await new Promise((r) => setTimeout(r, p.delayMs));
    await write(p.entry);
    if (p.duplicate) await write(p.entry);
  };

  // Undelayed entries are awaited, so they keep the writer's order; delayed ones go on their own.
  const dispatch = async (p: Plan): Promise<void> => {
    if (p.delayMs <= 0) return deliver(p);
    const d: Promise<void> = deliver(p)
      .catch(onError)
      .finally(() => inflight.delete(d));
    inflight.add(d);
  };

  const release = (id: string): Promise<void> => {
    const h = held.get(id);
    if (!h) return Promise.resolve();
    held.delete(id);
    clearTimeout(h.timer);
    return dispatch(h.plan);
  };

  return {
    async write(entry) {
      const hold = random() < (faults.reorder ?? 0);
      const plan: Plan = {
        entry,
        delayMs: Math.floor(random() * (faults.delayMs ?? 0)),
        duplicate: random() < (faults.duplicate ?? 0),
      };
      const op = operationOf(entry);
      const id = typeof op.id === 'string' ? op.id : undefined;
      if (hold && id !== undefined && op.first === true && op.last !== true && !held.has(id)) {
        const timer = setTimeout(() => void release(id).catch(onError), faults.holdMs ?? 10_000);
        held.set(id, { plan, timer });
        return;
      }
      await dispatch(plan);
      if (id !== undefined && op.last === true) await release(id);
    },
    async flush() {
      await Promise.all([...held.keys()].map(release));
      await Promise.all([...inflight]);
    },
  };
}
