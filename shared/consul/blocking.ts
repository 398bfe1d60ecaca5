import { PermanentError } from '../errors';
import { indexOf, parse, toCatalogNodes } from './answers';
import { kvGet } from './kv';
import type { Connection, PapiResponse } from './package';
import { catalogNodesSchema, healthChecksSchema, serviceHealthSchema } from './schemas';
import type { BlockingOptions, CallOptions, ConsulClient, ConsulClientSettings } from './types';

/** Milliseconds of a Consul duration such as `30s`, `500ms` or `5m`. */
export function parseWait(wait: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(wait);
  if (!m) throw new PermanentError(`not a Consul wait duration: ${wait}`);
  const unit = { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
  return Number(m[1]) * unit;
}

/** Blocking queries: each answers when the data changes past `index`, or after `wait`. */
export function blockingApi(conn: Connection, settings: ConsulClientSettings): ConsulClient['blocking'] {
  const { consul, run, withHeaders } = conn;
  // A blocking query waits up to `wait` on the server: its attempt timeout must outlast that.
  const waitMs = (options: BlockingOptions) => parseWait(options.wait ?? '30s');
  const blockingCall = (options: BlockingOptions): CallOptions => ({
    timeoutMs: settings.timeoutMs + waitMs(options) + Math.max(waitMs(options) / 16, 500),
  });
  const blocking = (options: BlockingOptions) => ({
    index: String(options.index ?? 0),
    wait: options.wait ?? '30s',
  });
  return {
    kv: (key, options = {}) =>
      run(
        `kv watch ${key}`,
        (pass) => kvGet(conn, key, { ...pass, ...blocking(options) }),
        blockingCall(options),
      ),
    catalogNodes: (options = {}) =>
      run(
        'catalog nodes watch',
        async (pass) => {
          const [res, answer] = (await consul.catalog.node.list({
            ...pass,
            ...blocking(options),
            ctx: withHeaders(),
          })) as [PapiResponse, unknown];
          return {
            value: toCatalogNodes(parse(catalogNodesSchema, answer ?? [], 'catalog/nodes')),
            index: indexOf(res),
          };
        },
        blockingCall(options),
      ),
    healthService: (name, options = {}) =>
      run(
        `health service watch ${name}`,
        async (pass) => {
          const [res, answer] = (await consul.health.service({
            service: name,
            ...(options.passing ? { passing: true } : {}),
            ...pass,
            ...blocking(options),
            ctx: withHeaders(),
          })) as [PapiResponse, unknown];
          return { value: parse(serviceHealthSchema, answer ?? [], 'health/service'), index: indexOf(res) };
        },
        blockingCall(options),
      ),
    healthState: (options = {}) =>
      run(
        'health state watch',
        async (pass) => {
          const [res, answer] = (await consul.health.state({
            state: 'any',
            ...pass,
            ...blocking(options),
            ctx: withHeaders(),
          })) as [PapiResponse, unknown];
          return { value: parse(healthChecksSchema, answer ?? [], 'health/state'), index: indexOf(res) };
        },
        blockingCall(options),
      ),
  };
}
