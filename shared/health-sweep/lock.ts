import type { ConsulClient } from '../consul';
import type { Logger } from '../logging';

/**
 * One sweep acts at a time: a KV lock held by a Consul session with a TTL and behaviour `delete`
 * (a sweep that dies frees the lock when its session expires). The holder renews the session in
 * the background; it counts the lock as held only while the last successful renewal is younger
 * than the TTL (minus a margin), so a sweep whose renewals fail, or whose session was destroyed,
 * stops acting even before it learns why.
 */

export interface SweepLock {
  /** The session holding the lock. */
  readonly session: string;
  /** Whether the sweep may still act. */
  held(): boolean;
  /** Releases the lock and destroys the session; never throws. */
  release(): Promise<void>;
}

export type LockConsul = {
  session: Pick<ConsulClient['session'], 'create' | 'renew' | 'destroy'>;
  kv: Pick<ConsulClient['kv'], 'acquire' | 'release'>;
};

export interface LockSettings {
  key: string;
  /** Session TTL in seconds (Consul accepts 10 to 86400). */
  ttlSeconds: number;
  /** Written into the lock's value: who holds it (a function execution, for a human reading KV). */
  owner: string;
  logger: Logger;
  now?: () => number;
}

/** The lock, or null when another sweep holds it. */
export async function acquireSweepLock(consul: LockConsul, s: LockSettings): Promise<SweepLock | null> {
  const now = s.now ?? Date.now;
  const ttlMs = s.ttlSeconds * 1000;
  // Renewals every third of the TTL; the lock counts as lost a third of the TTL before Consul's deadline.
  const margin = ttlMs / 3;
  const started = now();
  // Lock delay 0: a crashed sweep's successor may take over as soon as the session is gone.
  const session = await consul.session.create({
    name: 'healthSweep',
    ttl: `${s.ttlSeconds}s`,
    behavior: 'delete',
    lockDelay: '0s',
  });
  const value = JSON.stringify({ owner: s.owner, since: new Date(started).toISOString() });
  let acquired = false;
  try {
    acquired = await consul.kv.acquire(s.key, value, session);
  } finally {
    if (!acquired) await consul.session.destroy(session).catch(() => undefined);
  }
  if (!acquired) return null;

  let renewedAt = started;
  let lost = false;
  let released = false;
  let renewal: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    renewal = consul.session.renew(session).then(
      () => {
        if (!lost) renewedAt = now();
      },
      (err: unknown) => {
        // A destroyed or expired session cannot come back: the lock is gone for good.
        lost = true;
        s.logger.warn({ session, reason: (err as Error).message }, 'sweep lock lost: stop acting');
      },
    );
  }, ttlMs / 3);
  timer.unref();

  return {
    session,
    held: () => !lost && !released && now() - renewedAt < ttlMs - margin,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      // A renewal in flight ends before the session goes: nothing of the sweep outlives it.
      await renewal;
      await consul.kv.release(s.key, value, session).catch(() => undefined);
      await consul.session.destroy(session).catch(() => undefined);
    },
  };
}
