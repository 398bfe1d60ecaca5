import { z } from 'zod';
import type { GcpClients } from './client';
import { classifyGoogleError } from './errors';
import { readOrNotFound } from './instances';

/**
 * What `zoneOperations.get` says about one Compute operation: its type, the id of the resource it
 * changes, its status and whether it failed. The audit entries of an operation carry its `name` as
 * `operation.id` (test/fixtures/events/audit-instance-delete-first.json: `response.name` equals it),
 * and `zoneOperations.get` takes that name.
 * https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/get
 */
export type OperationLookup =
  | { found: false }
  | {
      found: true;
      operationType: string;
      targetId: string;
      status: 'PENDING' | 'RUNNING' | 'DONE';
      failed: boolean;
    };

export interface OperationRef {
  project: string;
  zone: string;
  /** The operation's name (or its numeric id: Compute accepts either). */
  name: string;
}

export interface ZoneOperationsApi {
  get(ref: OperationRef): Promise<OperationLookup>;
}

/**
 * What `zoneOperations.get` takes: "Name of the Operations resource to return, or its unique numeric
 * identifier" (https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/get). Names
 * are Compute resource names, a lower-case letter, then letters, digits and hyphens, not ending in a
 * hyphen (https://cloud.google.com/compute/docs/naming-resources#resource-name-format); the ones
 * Compute logs read `operation-<ms>-<hex>-<hex>-<hex>` or `systemevent-<ms>-<hex>` (~55 characters:
 * test/fixtures/events), so the length is bounded loosely at 128. The id is a uint64
 * (Operation.id). Nothing else is ever a Compute operation: no `/`, `.`, `?` or `%` reaches a request path.
 */
export const operationNamePattern = /^(?:[a-z](?:[-a-z0-9]{0,126}[a-z0-9])?|[1-9][0-9]{0,19})$/;

// The fields read from Compute's answer; the client may give enums as names or numbers.
const operationSchema = z.object({
  operationType: z.string().min(1),
  targetId: z
    .union([z.string(), z.number()])
    .transform(String)
    .pipe(z.string().regex(/^\d{1,20}$/)),
  status: z
    .union([z.string(), z.number()])
    .transform(String)
    .pipe(z.enum(['PENDING', 'RUNNING', 'DONE'])),
  error: z.object({ errors: z.array(z.unknown()).nullish() }).nullish(),
});

export function createZoneOperationsApi(
  clients: GcpClients,
  options: { timeoutMs?: number } = {},
): ZoneOperationsApi {
  const timeout = options.timeoutMs ?? 10_000;
  return {
    async get(ref) {
      const what = `zoneOperations.get ${ref.zone}/${ref.name}`;
      if (!operationNamePattern.test(ref.name)) return { found: false };
      const answer = await readOrNotFound(what, async () => {
        const client = await clients.ready('zoneOperations');
        const [operation] = await client.get(
          { project: ref.project, zone: ref.zone, operation: ref.name },
          { timeout, maxRetries: 2 },
        );
        return operation;
      });
      if (!answer) return { found: false };
      const parsed = operationSchema.safeParse(answer);
      if (!parsed.success)
        throw classifyGoogleError(new Error(`unexpected answer: ${parsed.error.issues[0]?.message}`), what);
      const { operationType, targetId, status, error } = parsed.data;
      return { found: true, operationType, targetId, status, failed: (error?.errors?.length ?? 0) > 0 };
    },
  };
}
