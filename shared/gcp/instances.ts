import type { GcpClients } from './client';
import { classifyGoogleError, isNotFound } from './errors';

/** What `instances.get` says about one instance name in one zone. */
export type InstanceLookup = { found: false } | { found: true; id: string; status: string };

export interface InstanceRef {
  project: string;
  zone: string;
  name: string;
}

export interface InstancesApi {
  get(ref: InstanceRef): Promise<InstanceLookup>;
}

/** Runs one Compute read: its answer, `null` for a 404, else the failure as classified. */
export async function readOrNotFound<T>(what: string, read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw classifyGoogleError(err, what);
  }
}

/**
 * `instances.get` on the factory's instances client. A 404 is an answer (no such instance); any
 * other failure is thrown as classified by the one Google error mapping.
 */
export function createInstancesApi(clients: GcpClients, options: { timeoutMs?: number } = {}): InstancesApi {
  const timeout = options.timeoutMs ?? 10_000;
  return {
    async get(ref) {
      const what = `instances.get ${ref.zone}/${ref.name}`;
      const instance = await readOrNotFound(what, async () => {
        const client = await clients.ready('instances');
        const [answer] = await client.get(
          { project: ref.project, zone: ref.zone, instance: ref.name },
          { timeout, maxRetries: 2 },
        );
        return answer;
      });
      if (!instance) return { found: false };
      const id = instance.id;
      if (id === null || id === undefined) throw classifyGoogleError(new Error('answer without an id'), what);
      return { found: true, id: String(id), status: instance.status ?? 'UNKNOWN' };
    },
  };
}
