import type { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client';
import type { ComputeEndpoint } from '../config';

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

/** A Compute call that failed for a reason other than "no such instance": worth a redelivery. */
export class ComputeError extends Error {
  override name = 'ComputeError';
  readonly transient = true;
}

// REST errors surface as HTTP statuses (GaxiosError) or, decoded, as gRPC codes (5 = NOT_FOUND).
const isNotFound = (err: unknown) => {
  const { code, status } = err as { code?: unknown; status?: unknown };
  return code === 5 || code === 404 || status === 404;
};

/**
 * `instances.get` through the official client, constructed on first use. Only the instances client
 * file is loaded (the package index loads every Compute client and costs seconds of cold start).
 * The endpoint options point the same client at an emulator.
 */
export function createInstancesApi(
  endpoint: ComputeEndpoint,
  options: { timeoutMs?: number } = {},
): InstancesApi {
  let client: InstancesClient | undefined;
  const timeout = options.timeoutMs ?? 10_000;
  return {
    async get(ref) {
      if (!client) {
        // Deferred require: most events never need Compute, so its ~0.4 s load stays off the cold start.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const mod = require('@google-cloud/compute/build/src/v1/instances_client') as {
          InstancesClient: typeof InstancesClient;
        };
        // Credentials never travel over plain http: an http endpoint is a local emulator, called
        // without authentication.
        const options: ConstructorParameters<typeof InstancesClient>[0] = { ...endpoint, fallback: true };
        if (endpoint.protocol === 'http') {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { googleAuthLibrary } = require('google-gax') as typeof import('google-gax');
          options.authClient = new googleAuthLibrary.PassThroughClient({
            transporterOptions: { fetchImplementation: fetch },
          });
        }
        client = new mod.InstancesClient(options);
      }
      try {
        const [instance] = await client.get(
          { project: ref.project, zone: ref.zone, instance: ref.name },
          { timeout, maxRetries: 2 },
        );
        if (instance.id === null || instance.id === undefined) {
          throw new ComputeError(`instances.get ${ref.zone}/${ref.name}: answer without an id`);
        }
        return { found: true, id: String(instance.id), status: instance.status ?? 'UNKNOWN' };
      } catch (err) {
        if (isNotFound(err)) return { found: false };
        if (err instanceof ComputeError) throw err;
        throw new ComputeError(`instances.get ${ref.zone}/${ref.name}: ${(err as Error).message}`);
      }
    },
  };
}
