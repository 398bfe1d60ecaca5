import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import Consul from 'consul';
import {
  classifyError,
  isTransientStatus,
  PermanentError,
  TransientError,
  type ClassifiedError,
} from '../errors';
import type { TxnOp } from './schemas';
import type { CallOptions, ConsulClientSettings } from './types';

/**
 * The `consul` npm package (node-consul) set up from the settings: TLS agent, token, a cap on the
 * size of answers; and `run`, which gives every call an overall deadline and a bounded retry of
 * transient failures, and turns what the package throws into TransientError or PermanentError.
 */

// The package's typings declare few of the options it passes through (timeout, ctx, index, wait,
// node-meta) and type answers as `any`: this is the view of it used here, answers `unknown` until
// validated. Beside it, what its HTTP client (papi) offers: request methods, for the endpoints the
// package lacks, and an extension hook, for the size cap.
type Call = (options: Record<string, unknown>) => Promise<unknown>;
export interface ConsulPackage {
  kv: { get: Call; keys: Call; set: Call; del: Call };
  transaction: { create(operations: TxnOp[], options: Record<string, unknown>): Promise<unknown> };
  catalog: { register: Call; deregister: Call; node: { list: Call; services: Call } };
  health: { node: Call; service: Call; state: Call };
  session: { create: Call; destroy: Call; renew: Call };
  agent: {
    self: Call;
    members: Call;
    checks: Call;
    maintenance: Call;
    service: { maintenance: Call; register: Call };
  };
  status: { leader: Call; peers: Call };
  destroy(): void;
}
export interface PapiRequest {
  name: string;
  path: string;
  params?: Record<string, string>;
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  body?: unknown;
  type?: 'json' | 'text';
  timeout?: number;
  /** A smaller cap than the connection's for this request's answer. */
  maxResponseBytes?: number;
}
export interface PapiResponse {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body?: unknown;
}
interface Transport {
  request(options: http.RequestOptions): http.ClientRequest;
}
interface PapiClient {
  _get(request: PapiRequest): Promise<PapiResponse>;
  _put(request: PapiRequest): Promise<PapiResponse>;
  _ext(
    event: 'onRequest',
    hook: (request: { transport: Transport; opts: Partial<PapiRequest> }, next: () => void) => void,
  ): void;
}
/** papi's error for a non-2xx answer. */
interface ResponseError {
  isResponse: true;
  statusCode: number;
  response: PapiResponse;
}

export const isResponseError = (err: unknown): err is ResponseError =>
  typeof err === 'object' && err !== null && (err as { isResponse?: unknown }).isResponse === true;

export const bodyText = (body: unknown): string =>
  body === undefined
    ? ''
    : Buffer.isBuffer(body)
      ? body.toString('utf8')
      : typeof body === 'string'
        ? body
        : JSON.stringify(body);

/** Options the package passes through to papi (per-request timeout, a context for the answer's headers). */
export type PassThrough = { timeout: number };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const defaultMaxResponseBytes = 8 * 1024 * 1024;

/**
 * An answer over the cap: permanent (the same read meets the same answer), and typed, so a caller
 * can fall back to smaller reads instead of failing as for any other permanent error.
 */
export class AnswerTooLargeError extends PermanentError {
  override name = 'AnswerTooLargeError';
  constructor(readonly limit: number) {
    super(`answer larger than ${limit} bytes`);
  }
}

/** Wraps the transport so an answer larger than `max` fails the request instead of filling memory. */
function cappedTransport(transport: Transport, max: number): Transport {
  return {
    request(options) {
      const req = transport.request(options);
      req.on('response', (res) => {
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > max && !req.destroyed) {
            req.emit('error', new AnswerTooLargeError(max));
            req.destroy();
          }
        });
      });
      return req;
    },
  };
}

export interface Connection {
  consul: ConsulPackage;
  /**
   * Runs one call with retries of transient failures inside an overall deadline. Every write made
   * through it is a compare-and-set or idempotent, so replaying one whose answer was lost is safe.
   */
  run<T>(what: string, attempt: (pass: PassThrough) => Promise<T>, options?: CallOptions): Promise<T>;
  /** A request the package has no method for, through its own HTTP client. */
  raw(
    method: '_get' | '_put',
    request: Omit<PapiRequest, 'headers' | 'timeout'>,
    pass: PassThrough,
  ): Promise<PapiResponse>;
  /** A context that makes the package answer `[response, body]`, for the X-Consul-Index header. */
  withHeaders(): EventEmitter;
}

export function connect(settings: ConsulClientSettings): Connection {
  const base = new URL(settings.baseUrl);
  const secure = base.protocol === 'https:';
  const keepAlive = settings.keepAlive ?? true;
  const tls = settings.tls ?? { rejectUnauthorized: true };
  const agent = secure
    ? new https.Agent({
        keepAlive,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: tls.rejectUnauthorized,
        servername: tls.serverName,
      })
    : new http.Agent({ keepAlive });
  const pkg = new Consul({
    host: base.hostname,
    port: Number(base.port || (secure ? 443 : 80)),
    secure,
    agent,
    defaults: settings.token ? { token: settings.token } : {},
  });
  const consul = pkg as unknown as ConsulPackage;
  const papi = pkg as unknown as PapiClient;
  const maxBytes = settings.maxResponseBytes ?? defaultMaxResponseBytes;
  papi._ext('onRequest', (request, next) => {
    const own = request.opts.maxResponseBytes;
    const cap = typeof own === 'number' && own > 0 ? Math.min(own, maxBytes) : maxBytes;
    request.transport = cappedTransport(request.transport, cap);
    next();
  });
  const tokenHeader: Record<string, string> = settings.token ? { 'x-consul-token': settings.token } : {};

  const toError = (what: string, err: unknown, timeoutMs: number): ClassifiedError => {
    if (err instanceof TransientError || err instanceof PermanentError) return err;
    if (isResponseError(err)) {
      const detail = bodyText(err.response.body).trim().slice(0, 300);
      const message = `${what}: HTTP ${err.statusCode}: ${detail}`;
      return isTransientStatus(err.statusCode, detail)
        ? new TransientError(message, { cause: err, status: err.statusCode })
        : new PermanentError(message, { cause: err, status: err.statusCode });
    }
    if ((err as { isTimeout?: unknown }).isTimeout === true) {
      return new TransientError(`${what} to ${settings.baseUrl}: timed out after ${timeoutMs} ms`, {
        cause: err,
      });
    }
    const classified = classifyError(err);
    const message = `${what} to ${settings.baseUrl}: ${classified.message}`;
    return classified.transient
      ? new TransientError(message, { cause: err })
      : new PermanentError(message, { cause: err });
  };

  const run = async <T>(
    what: string,
    attempt: (pass: PassThrough) => Promise<T>,
    options: CallOptions = {},
  ): Promise<T> => {
    const timeoutMs = options.timeoutMs ?? settings.timeoutMs;
    const retries = options.retries ?? settings.retries;
    const deadlineMs = settings.deadlineMs ?? timeoutMs * (retries + 1) + 100 * 2 ** (retries + 1);
    const deadline = Date.now() + deadlineMs;
    let last: ClassifiedError | undefined;
    for (let i = 0; i <= retries; i++) {
      if (i > 0)
        await sleep(Math.min(50 * 2 ** i * (0.5 + Math.random()), Math.max(0, deadline - Date.now())));
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const timeout = Math.min(timeoutMs, remaining);
      try {
        return await attempt({ timeout });
      } catch (err) {
        last = toError(what, err, timeout);
        if (!last.transient) throw last;
      }
    }
    throw last ?? new TransientError(`${what} to ${settings.baseUrl}: no attempt within ${deadlineMs} ms`);
  };

  const withHeaders = () => Object.assign(new EventEmitter(), { includeResponse: true });

  // For the endpoints the package lacks: its own HTTP client, with the same agent and timeouts.
  const raw = (
    method: '_get' | '_put',
    request: Omit<PapiRequest, 'headers' | 'timeout'>,
    pass: PassThrough,
  ) => papi[method]({ ...request, headers: tokenHeader, timeout: pass.timeout });

  return { consul, run, raw, withHeaders };
}
