import http from 'node:http';
import https from 'node:https';
import type { TlsSettings } from '../config';

/** A failed Consul call. `transient` ones (unreachable, timeout, 5xx) are worth a redelivery. */
export class ConsulError extends Error {
  override name = 'ConsulError';
  constructor(
    message: string,
    readonly transient: boolean,
    readonly status?: number,
    readonly body?: string,
  ) {
    super(message);
  }
}

export interface ConsulResponse {
  status: number;
  body: string;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Sent as is (a KV value) instead of `body` as JSON. */
  rawBody?: string;
  /** Statuses returned to the caller instead of thrown (2xx always are). */
  expect?: readonly number[];
  /** Overrides the per-attempt timeout, for calls Consul answers only after some work. */
  timeoutMs?: number;
}

export interface TransportSettings {
  baseUrl: string;
  token?: string;
  tls: TlsSettings;
  timeoutMs: number;
  retries: number;
  /** Off for one-off calls to many different agents, so no idle sockets pile up. */
  keepAlive?: boolean;
}

export interface ConsulTransport {
  request(method: string, path: string, options?: RequestOptions): Promise<ConsulResponse>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// 5xx answers that are not going to change on a retry.
const permanentServerErrors = [/permission denied/i, /acl not found/i, /bad request/i];

/**
 * HTTP(S) to one Consul agent with keep-alive, a per-attempt timeout and a bounded retry with
 * jittered backoff on transient failures. node:https rather than fetch, because fetch cannot take a
 * CA, a client certificate or a server name per connection without a separate undici dependency.
 */
export function createTransport(settings: TransportSettings): ConsulTransport {
  const base = new URL(settings.baseUrl);
  const secure = base.protocol === 'https:';
  const keepAlive = settings.keepAlive ?? true;
  const agent = secure
    ? new https.Agent({
        keepAlive,
        ca: settings.tls.ca,
        cert: settings.tls.cert,
        key: settings.tls.key,
        rejectUnauthorized: settings.tls.rejectUnauthorized,
        servername: settings.tls.serverName,
      })
    : new http.Agent({ keepAlive });
  const lib = secure ? https : http;

  const once = (
    method: string,
    url: URL,
    payload: string | undefined,
    timeoutMs: number,
  ): Promise<ConsulResponse> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (settings.token) headers['x-consul-token'] = settings.token;
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(payload));
      }
      const req = lib.request(url, { method, agent, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });

  return {
    async request(method, path, options = {}) {
      const url = new URL(path, base);
      for (const [k, v] of Object.entries(options.query ?? {})) {
        if (v === true) url.searchParams.set(k, '');
        else if (v !== undefined && v !== false) url.searchParams.set(k, String(v));
      }
      const payload =
        options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      const what = `${method} ${url.pathname}`;
      let lastError: ConsulError | undefined;
      for (let attempt = 0; attempt <= settings.retries; attempt++) {
        if (attempt > 0) await sleep(50 * 2 ** attempt * (0.5 + Math.random()));
        let res: ConsulResponse;
        try {
          res = await once(method, url, payload, options.timeoutMs ?? settings.timeoutMs);
        } catch (err) {
          // Every write here is a compare-and-set or idempotent, so replaying one is safe.
          lastError = new ConsulError(`${what} to ${settings.baseUrl}: ${(err as Error).message}`, true);
          continue;
        }
        if ((res.status >= 200 && res.status < 300) || options.expect?.includes(res.status)) return res;
        const detail = res.body.trim().slice(0, 300);
        const transient =
          res.status === 429 || (res.status >= 500 && !permanentServerErrors.some((p) => p.test(detail)));
        lastError = new ConsulError(
          `${what}: HTTP ${res.status}: ${detail}`,
          transient,
          res.status,
          res.body,
        );
        if (!transient) break;
      }
      throw lastError ?? new ConsulError(`${what}: no attempt made`, true);
    },
  };
}
