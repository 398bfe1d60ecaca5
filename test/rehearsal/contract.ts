/**
 * The rehearsal's stand-in for Google's APIs: one module per API, mounted by `server.ts` at
 * `/<name>/` so that gcloud's `api_endpoint_overrides/<name>` points at it. Modules keep resource
 * state so that a second deploy finds what the first made and a teardown can be checked for leftovers.
 */

export interface ApiRequest {
  method: string;
  /** Path below the module's mount point, without the query: `/v1/projects/demo-project/secrets/x`. */
  path: string;
  query: URLSearchParams;
  /** The JSON body, parsed; undefined when there is none or it is not JSON. */
  body: unknown;
  /** The body's bytes, for uploads. */
  raw: Buffer;
  /** This module's own base URL on the stand-in (`http://127.0.0.1:PORT/<name>`), for links it returns. */
  base: string;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ApiModule {
  /** gcloud's `api_endpoint_overrides` key: `iam`, `secretmanager`, `cloudfunctions`, … */
  name: string;
  /** Undefined for a request it does not serve: the server answers 404 and counts it as unserved. */
  handle(req: ApiRequest): ApiResponse | undefined | Promise<ApiResponse | undefined>;
  /** What it holds now, for "teardown leaves nothing behind". */
  inventory(): { kind: string; name: string }[];
}

export interface ProjectFacts {
  project: string;
  projectNumber: string;
}

export type ApiModuleFactory = (facts: ProjectFacts) => ApiModule;

/** Google's error body (https://cloud.google.com/apis/design/errors#http_mapping). */
export function googleError(status: number, reason: string, message: string): ApiResponse {
  return { status, body: { error: { code: status, message, status: reason } } };
}
