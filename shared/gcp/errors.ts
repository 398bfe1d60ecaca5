import { classifyError, PermanentError, TransientError, type ClassifiedError } from '../errors';

/**
 * Google's API errors mapped onto shared/errors.ts. The REST clients throw either an HTTP error
 * whose message is Google's JSON error body (`{"error":{"code":400,"errors":[{"reason":…}]}}`,
 * https://cloud.google.com/apis/design/errors#http_mapping) or a GoogleError carrying the decoded
 * gRPC code; both are read here, and nothing else in the code parses them.
 */

export interface GoogleErrorInfo {
  /** HTTP status, also when the error carried a gRPC code. */
  status?: number;
  /** Google's `errors[].reason` values, e.g. `resourceNotReady`, `notFound`, `rateLimitExceeded`. */
  reasons: string[];
  message: string;
}

// gRPC code → HTTP status, as Google's APIs map them (google.rpc.Code).
const grpcToHttp: Record<number, number> = {
  1: 499,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 400,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

export function googleErrorInfo(err: unknown): GoogleErrorInfo {
  const e = (err ?? {}) as { code?: unknown; status?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  let status: number | undefined;
  if (typeof e.code === 'number') status = e.code < 100 ? grpcToHttp[e.code] : e.code;
  else if (typeof e.status === 'number') status = e.status;
  let reasons: string[] = [];
  try {
    const body = JSON.parse(message) as { error?: { code?: unknown; errors?: { reason?: unknown }[] } };
    if (typeof body.error?.code === 'number') status = body.error.code;
    reasons = (body.error?.errors ?? []).map((x) => (typeof x.reason === 'string' ? x.reason : ''));
  } catch {
    if (/\bresourceNotReady\b/.test(message)) reasons = ['resourceNotReady'];
  }
  return { status, reasons, message };
}

export const isNotFound = (err: unknown): boolean => googleErrorInfo(err).status === 404;

/** A 4xx answer: the request was refused before any operation started, so nothing changed. */
export class RequestRefusedError extends PermanentError {
  override name = 'RequestRefusedError';
}

/**
 * 400 `resourceNotReady`: another operation on the resource still runs. Nothing changed; read
 * again and plan again.
 */
export class ResourceBusyError extends TransientError {
  override name = 'ResourceBusyError';
}

/** An operation Compute accepted and then reported failed (its `error` or `httpErrorStatusCode`). */
export class OperationFailedError extends PermanentError {
  override name = 'OperationFailedError';
}

/** True when the error says the request changed nothing (refused or busy). */
export const wasRefused = (err: unknown): boolean =>
  err instanceof RequestRefusedError || err instanceof ResourceBusyError;

/**
 * Any failure of a Google API call as a TransientError or PermanentError whose message starts with
 * `what`: resourceNotReady → ResourceBusyError; 429, 5xx, deadline, unavailable → transient; another
 * 4xx → RequestRefusedError; no status (a socket error, a timeout) → as shared/errors.ts decides.
 */
export function classifyGoogleError(err: unknown, what: string): ClassifiedError {
  if (err instanceof TransientError || err instanceof PermanentError) return err;
  const info = googleErrorInfo(err);
  const text = `${what}: ${info.status ?? 'error'} ${info.message.slice(0, 500)}`;
  if (info.reasons.includes('resourceNotReady'))
    return new ResourceBusyError(text, { cause: err, status: 400 });
  const { status } = info;
  if (status === undefined) {
    const inner = classifyError(err);
    return inner.transient
      ? new TransientError(text, { cause: err })
      : new PermanentError(text, { cause: err });
  }
  if (status === 429 || status >= 500) return new TransientError(text, { cause: err, status });
  if (status >= 400) return new RequestRefusedError(text, { cause: err, status });
  return new TransientError(text, { cause: err, status });
}
