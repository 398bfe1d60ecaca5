import { z } from 'zod';

/**
 * insertId and operation.id make the ledger key: printable ASCII, bounded (Google's are short
 * `[-a-z0-9]` strings); a lone surrogate would make the key unencodable and the event retried forever.
 */
export const entryIdSchema = z.string().regex(/^[\x21-\x7e]{1,256}$/, 'printable ASCII, 1 to 256 characters');

/**
 * The parts of a Cloud Audit Log `LogEntry` (delivered by a log sink to Pub/Sub) that
 * instanceEvents reads. Unknown fields are ignored; documented optional fields may be missing or
 * null in real deliveries.
 */
export const logEntrySchema = z.object({
  insertId: entryIdSchema,
  logName: z.string().min(1),
  timestamp: z.iso.datetime({ offset: true }),
  operation: z
    .object({
      id: entryIdSchema,
      producer: z.string().nullish(),
      first: z.boolean().nullish(),
      last: z.boolean().nullish(),
    })
    .nullish(),
  resource: z.object({
    type: z.string().min(1),
    labels: z.record(z.string(), z.string()).nullish(),
  }),
  protoPayload: z.object({
    methodName: z.string().min(1),
    resourceName: z.string().nullish(),
    request: z.record(z.string(), z.unknown()).nullish(),
    status: z.object({ code: z.number().int().nullish(), message: z.string().nullish() }).nullish(),
  }),
});
export type LogEntry = z.infer<typeof logEntrySchema>;
