/** Helpers every part of the client uses on what Consul answers: validation and the index header. */
import type http from 'node:http';
import type { z } from 'zod';
import { PermanentError } from '../errors';
import { bodyText } from './package';
import type { CatalogNode, catalogNodesSchema } from './schemas';

export function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new PermanentError(`${what}: unexpected answer: ${parsed.error.message}`);
  return parsed.data;
}

/** An answer papi left undecoded (no JSON content type), decoded; anything else as it is. */
export const jsonText = (body: unknown): unknown => {
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) return body;
  try {
    return JSON.parse(bodyText(body)) as unknown;
  } catch {
    return body;
  }
};

export const indexOf = (res: { headers: http.IncomingHttpHeaders }): number => {
  const value = Number(res.headers['x-consul-index']);
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
};

/** `/v1/catalog/nodes` entries as the client hands them out. */
export const toCatalogNodes = (nodes: z.infer<typeof catalogNodesSchema>): CatalogNode[] =>
  nodes.map((n) => ({ name: n.Node, address: n.Address, meta: n.Meta ?? {}, modifyIndex: n.ModifyIndex }));
