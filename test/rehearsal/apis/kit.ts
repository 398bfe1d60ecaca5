/**
 * What the API modules share: routing on `METHOD path` patterns, strict body parsing (Google answers
 * 400 INVALID_ARGUMENT to unknown fields), update masks, and long-running operations that are done
 * only after a poll or two, as real ones are.
 */
import { z } from 'zod';

import { googleError, type ApiRequest, type ApiResponse } from '../contract';

export type Params = Record<string, string>;
export type Handler = (req: ApiRequest, p: Params) => ApiResponse | Promise<ApiResponse>;

/**
 * A route table: `GET /v1/projects/{project}/secrets/{secret}` with `{name}` matching one path
 * segment and `{name=**}` the rest. The `:verb` suffix of custom methods is matched literally.
 */
export function router(routes: [string, Handler][]): (req: ApiRequest) => Promise<ApiResponse> | undefined {
  const compiled = routes.map(([spec, handler]) => {
    const [method = '', pattern = ''] = spec.split(' ');
    const names: string[] = [];
    const source = pattern
      .replace(/[.*+?^$()|[\]\\]/g, '\\$&')
      .replace(/\{(\w+)(=\\\*\\\*)?\}/g, (_m, n: string, rest?: string) => {
        names.push(n);
        return rest ? '(.+)' : '([^/:]+)';
      });
    return { method, re: new RegExp(`^${source}$`), names, handler };
  });
  return (req) => {
    const path = decodeURIComponent(req.path);
    for (const r of compiled) {
      if (r.method !== req.method) continue;
      const m = r.re.exec(path);
      if (!m) continue;
      const params: Params = {};
      r.names.forEach((n, i) => (params[n] = m[i + 1] ?? ''));
      return new Promise<ApiResponse>((resolve) => resolve(r.handler(req, params)));
    }
    return undefined;
  };
}

export class HttpError extends Error {
  constructor(readonly response: ApiResponse) {
    super(JSON.stringify(response.body));
  }
}

/** Throws the Google error; `guard` turns it into the answer. */
export function fail(status: number, reason: string, message: string): never {
  throw new HttpError(googleError(status, reason, message));
}

export function notFound(what: string): never {
  return fail(404, 'NOT_FOUND', `${what} not found`);
}
export function alreadyExists(what: string): never {
  return fail(409, 'ALREADY_EXISTS', `${what} already exists`);
}
export function invalid(message: string): never {
  return fail(400, 'INVALID_ARGUMENT', message);
}

/** Runs a module's router, answering thrown `HttpError`s as what they carry. */
export function guard(
  route: ReturnType<typeof router>,
): (req: ApiRequest) => Promise<ApiResponse> | undefined {
  return (req) => {
    const answer = route(req);
    return answer?.catch((err: unknown) => {
      if (err instanceof HttpError) return err.response;
      throw err;
    });
  };
}

/** Parses a body strictly: an unknown field or a bad value is a 400, as at Google. */
export function parse<T extends z.ZodType>(schema: T, body: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success)
    invalid(`Invalid ${what}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return (r as { data: z.infer<T> }).data;
}

export const labels = z.record(
  z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/),
  z.string().regex(/^[a-z0-9_-]{0,63}$/),
);
/** protobuf Duration in JSON: "300s", "0.5s". */
export const duration = z.string().regex(/^\d+(\.\d{1,9})?s$/);

/** Copies the fields named in `updateMask` (comma-separated dotted paths) from `patch` onto `target`. */
export function applyMask<T extends object>(target: T, patch: Partial<T>, mask: string | null): T {
  // Masks name proto fields; clients send them snake_case (gcloud does) or camelCase.
  const camel = (f: string) => f.trim().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
  const fields = mask ? mask.split(',').filter(Boolean).map(camel) : Object.keys(patch);
  let out = { ...target } as Record<string, unknown>;
  for (const field of fields)
    out = setPath(out, field.split('.'), getPath(patch as Record<string, unknown>, field.split('.')));
  return out as T;
}

function getPath(from: Record<string, unknown> | undefined, path: string[]): unknown {
  const [head = '', ...rest] = path;
  const value = from?.[head];
  return rest.length === 0 ? value : getPath(value as Record<string, unknown> | undefined, rest);
}

function setPath(into: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const [head = '', ...rest] = path;
  const out = { ...into };
  const next =
    rest.length === 0
      ? value
      : setPath((out[head] as Record<string, unknown> | undefined) ?? {}, rest, value);
  if (next === undefined) delete out[head];
  else out[head] = next;
  return out;
}

/** Etags are bytes in Google's protos: clients may re-encode them URL-safe, so compare the bytes. */
export function sameEtag(a: string, b: string): boolean {
  return Buffer.from(a, 'base64').equals(Buffer.from(b, 'base64'));
}

export const now = (): string => new Date().toISOString();

/**
 * Long-running operations: `done` only from the `pollsToDone`-th read on, so a client that does not
 * poll sees an unfinished operation. The result is computed when the operation is started.
 */
export class Operations {
  private readonly ops = new Map<
    string,
    { reads: number; op: Record<string, unknown>; response?: unknown }
  >();
  private seq = 0;

  constructor(
    private readonly pollsToDone = 1,
    private readonly metadataType?: string,
  ) {}

  start(parent: string, response: unknown, metadata: Record<string, unknown> = {}): Record<string, unknown> {
    const name = `${parent}/operations/operation-${Date.now()}-${++this.seq}`;
    const op: Record<string, unknown> = {
      name,
      metadata: this.metadataType ? { '@type': this.metadataType, ...metadata } : metadata,
      done: false,
    };
    this.ops.set(name, { reads: 0, op, response });
    return op;
  }

  get(name: string): Record<string, unknown> {
    const entry = this.ops.get(name) ?? notFound(`Operation ${name}`);
    entry.reads++;
    if (entry.reads < this.pollsToDone) return entry.op;
    return { ...entry.op, done: true, response: entry.response };
  }
}
