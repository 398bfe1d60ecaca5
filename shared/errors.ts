/**
 * The two kinds of failure a handler fed by at-least-once delivery must tell apart: a transient one
 * (throw, so Pub/Sub redelivers) and a permanent one (acknowledge with an error log: a redelivery
 * would fail the same way). `classifyError` is the one place that decides which a thrown value is.
 */

export interface ErrorDetails {
  cause?: unknown;
  /** HTTP status of the answer that failed, when there was one. */
  status?: number;
}

/** Worth a retry: unreachable, timed out, 5xx, 429, no cluster leader, a concurrent delivery. */
export class TransientError extends Error {
  override name = 'TransientError';
  readonly transient = true;
  readonly status?: number;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
  }
}

/** Not worth a retry: other 4xx (ACL denied, bad request), an answer or input that fails validation. */
export class PermanentError extends Error {
  override name = 'PermanentError';
  readonly transient = false;
  readonly status?: number;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
  }
}

export type ClassifiedError = TransientError | PermanentError;

// Node's socket error codes for a peer that is down, restarting or unreachable.
const transientCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

// Certificate verification failures: a retry meets the same certificate.
const permanentCodes =
  /^(ERR_TLS_|CERT_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_(GET|VERIFY)_)/;
// The same by message, when a wrapper kept only the message (papi re-creates an error thrown in
// another realm, e.g. under jest, from its text).
const permanentMessages = /certificate|altnames/i;

// 5xx answers that a retry does not change (Consul answers some ACL failures with a 500).
const permanentServerErrors = [/permission denied/i, /acl not found/i, /bad request/i];

const messageOf = (err: unknown): string => {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : (JSON.stringify(err) ?? String(err));
};

/** Transient or permanent for an HTTP answer's status and body text. */
export function isTransientStatus(status: number, body = ''): boolean {
  if (status === 429) return true;
  if (status >= 500) return !permanentServerErrors.some((p) => p.test(body));
  return false;
}

const field = (err: object, key: string): unknown => (err as Record<string, unknown>)[key];

/**
 * Classifies any thrown value. Already classified errors are returned as they are. Anything not
 * recognised is transient: a function that fails for an unknown reason keeps its message (Pub/Sub's
 * dead-letter topic bounds the retries) rather than dropping it.
 */
export function classifyError(err: unknown): ClassifiedError {
  if (err instanceof TransientError || err instanceof PermanentError) return err;
  const message = messageOf(err);
  if (err !== null && typeof err === 'object') {
    const transient = field(err, 'transient');
    const status = field(err, 'status') ?? field(err, 'statusCode');
    if (typeof transient === 'boolean') {
      const details = { cause: err, status: typeof status === 'number' ? status : undefined };
      return transient ? new TransientError(message, details) : new PermanentError(message, details);
    }
    const code = field(err, 'code');
    if (typeof code === 'string' && transientCodes.has(code))
      return new TransientError(message, { cause: err });
    if (typeof code === 'string' && permanentCodes.test(code))
      return new PermanentError(message, { cause: err });
    if (typeof status === 'number' && status >= 400) {
      return isTransientStatus(status, message)
        ? new TransientError(message, { cause: err, status })
        : new PermanentError(message, { cause: err, status });
    }
    // zod's validation failures, and Consul's client-side validation of a request.
    if (field(err, 'name') === 'ZodError' || field(err, 'isValidation') === true)
      return new PermanentError(message, { cause: err });
    if (field(err, 'isTimeout') === true || field(err, 'isAbort') === true)
      return new TransientError(message, { cause: err });
    const cause = field(err, 'cause');
    if (cause !== undefined && cause !== err) {
      const inner = classifyError(cause);
      return inner.transient
        ? new TransientError(message, { cause: err, status: inner.status })
        : new PermanentError(message, { cause: err, status: inner.status });
    }
  }
  if (permanentMessages.test(message)) return new PermanentError(message, { cause: err });
  return new TransientError(message, { cause: err });
}

export const isTransient = (err: unknown): boolean => classifyError(err).transient;
