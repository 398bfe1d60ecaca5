import type { OrchestratorConfig } from '../config';
import { kvPrefixes } from '../contract';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ConsulClient } from '../consul/client';
import { readJson } from '../consul/kv-json';
import { TransientError } from '../errors';

/**
 * Idempotency ledger in Consul KV, for handlers fed by at-least-once delivery.
 *
 * One key per event id: `in-progress` (claimed by one delivery, with an expiry so a crashed run
 * frees it), `completed` (with a small result, kept for the retention) and deleted when the run
 * fails, so the redelivery runs again. Keys sit in a folder per UTC day of the event, so records
 * past the retention go with one delete-tree per day (done at most once a day per instance). Every
 * write is a compare-and-set, so two deliveries racing for the same id never both run; each claim
 * carries a random owner so a write that was applied but whose answer was lost is still recognised
 * as ours. A delivery that finds the id claimed by a live delivery (Pub/Sub duplicates arrive
 * together) waits a little for it: its completion makes this one a duplicate, its failure frees the
 * id for this one. Only a claim still held after the wait is a retry, so a crashed run's event is
 * redelivered until its claim expires.
 */

const recordSchema = z.object({
  state: z.enum(['in-progress', 'completed']),
  owner: z.string(),
  expiresAt: z.number(),
  result: z.unknown().optional(),
});
type LedgerRecord = z.infer<typeof recordSchema>;

/** Another delivery of the same event is running now: retry later. */
export class EventInProgressError extends TransientError {
  override name = 'EventInProgressError';
}

export type LedgerKv = Pick<ConsulClient['kv'], 'get' | 'cas' | 'delete' | 'keys' | 'deleteTree'>;

export interface LedgerSettings {
  kv: LedgerKv;
  /** KV prefix ending in `/`, e.g. `gce-ilb-orchestrator/ledger/instance-events/`. */
  prefix: string;
  inProgressTtlMs: number;
  retentionMs: number;
  /**
   * How long a delivery waits for another delivery of the same event to finish (default 30 s: a
   * removal's force-leave alone may take serf's 5 s broadcast timeout and more under load).
   */
  waitForOtherMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type LedgerOutcome<T> = { duplicate: false; result: T } | { duplicate: true; result: unknown };

/** An event's id and the time it happened (every delivery of it must give the same time). */
export interface LedgerEvent {
  id: string;
  at: number;
}

export interface Ledger {
  keyOf(event: LedgerEvent): string;
  /**
   * Runs `work` once per event across duplicate deliveries: a completed event returns its stored
   * result with `duplicate: true`; one claimed by a live delivery is waited for (then a duplicate,
   * or run here if that delivery failed) and throws EventInProgressError only if still claimed
   * after the wait; a failure of `work` frees the event and rethrows.
   */
  run<T>(event: LedgerEvent, work: () => Promise<T>): Promise<LedgerOutcome<T>>;
  /** Deletes the day folders older than the retention; returns the folders deleted. */
  purge(): Promise<string[]>;
}

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayMs = 24 * 3600 * 1000;
const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Polls of a key another delivery holds: quick at first (most runs take milliseconds), then sparser. */
const firstPollMs = 20;
const maxPollMs = 500;

/** instanceEvents' ledger as configured (ORCHESTRATOR_LEDGER_*), the one both its users build. */
export function ledgerFromConfig(
  config: OrchestratorConfig,
  kv: LedgerSettings['kv'],
  now?: () => number,
): Ledger {
  return createLedger({
    kv,
    prefix: kvPrefixes(config.kvPrefix).instanceEventsLedger,
    inProgressTtlMs: config.ledger.inProgressTtlMs,
    retentionMs: config.ledger.retentionMs,
    ...(now ? { now } : {}),
  });
}

export function createLedger(settings: LedgerSettings): Ledger {
  const now = settings.now ?? Date.now;
  const sleep = settings.sleep ?? defaultSleep;
  const waitForOtherMs = Math.min(settings.waitForOtherMs ?? 30_000, settings.inProgressTtlMs);
  const keyOf = (event: LedgerEvent) =>
    `${settings.prefix}${dayOf(event.at)}/${encodeURIComponent(event.id)}`;
  let purgedOn = '';

  const purge = async () => {
    // One day of margin: an event at 23:59 must still be found the whole retention later.
    const cutoff = dayOf(now() - settings.retentionMs - dayMs);
    const folders = await settings.kv.keys(settings.prefix, { separator: '/' });
    const old = folders.filter(
      (f) => /^\d{4}-\d{2}-\d{2}\/$/.test(f.slice(settings.prefix.length)) && f < settings.prefix + cutoff,
    );
    for (const folder of old) await settings.kv.deleteTree(folder);
    return old;
  };

  const read = async (key: string) => {
    const stored = await readJson(settings.kv, key, recordSchema);
    if (!stored) return null;
    // An unreadable record counts as expired, so it is overwritten (by CAS) rather than wedging the id.
    const record: LedgerRecord = stored.value ?? { state: 'in-progress', owner: '', expiresAt: 0 };
    return { record, index: stored.index };
  };

  // Claims the id; returns the index of our record, or the completed record of an earlier run.
  const claim = async (
    key: string,
    owner: string,
  ): Promise<{ index: number } | { completed: LedgerRecord }> => {
    const mine: LedgerRecord = { state: 'in-progress', owner, expiresAt: now() + settings.inProgressTtlMs };
    // Most ids are new: try to create the record first and read it only when that loses.
    const created = await settings.kv.cas(key, JSON.stringify(mine), 0);
    if (created !== null) return { index: created };
    let waited = 0;
    let pause = firstPollMs;
    for (let conflicts = 0; conflicts < 5;) {
      const current = await read(key);
      if (current && current.record.owner === owner) return { index: current.index };
      if (current && current.record.expiresAt > now()) {
        if (current.record.state === 'completed') return { completed: current.record };
        if (waited >= waitForOtherMs)
          throw new EventInProgressError(`event ${key} is being handled by another delivery`);
        await sleep(pause);
        waited += pause;
        pause = Math.min(pause * 2, maxPollMs);
        continue;
      }
      const index = await settings.kv.cas(
        key,
        JSON.stringify({ ...mine, expiresAt: now() + settings.inProgressTtlMs }),
        current?.index ?? 0,
      );
      if (index !== null) return { index };
      // Lost the race (or our write landed but its answer did not): the next read tells who owns it.
      conflicts++;
    }
    throw new EventInProgressError(`event ${key}: could not claim it after repeated conflicts`);
  };

  return {
    keyOf,
    purge,
    async run<T>(event: LedgerEvent, work: () => Promise<T>): Promise<LedgerOutcome<T>> {
      const key = keyOf(event);
      const owner = randomUUID();
      const claimed = await claim(key, owner);
      if ('completed' in claimed) return { duplicate: true, result: claimed.completed.result };
      let result: T;
      try {
        result = await work();
      } catch (err) {
        // Free the id so the redelivery runs again; if even that fails, the claim expires.
        await settings.kv.delete(key, { cas: claimed.index }).catch(() => undefined);
        throw err;
      }
      const done: LedgerRecord = {
        state: 'completed',
        owner,
        expiresAt: now() + settings.retentionMs,
        result,
      };
      // A lost CAS means our claim expired and a later delivery owns the id: it records the outcome.
      await settings.kv.cas(key, JSON.stringify(done), claimed.index);
      if (purgedOn !== dayOf(now())) {
        purgedOn = dayOf(now());
        // Housekeeping never fails the event: a purge that did not happen is retried tomorrow.
        await purge().catch(() => undefined);
      }
      return { duplicate: false, result };
    },
  };
}
