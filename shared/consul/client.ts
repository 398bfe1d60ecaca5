/**
 * The project's one way to talk to Consul, on the `consul` npm package (node-consul). What this
 * layer adds around the package: an overall deadline per call, a bounded retry of transient
 * failures with jittered backoff, a cap on the size of an answer, TLS from the settings, answers
 * validated with zod (every value from Consul is untrusted), and errors classified as
 * TransientError or PermanentError (shared/errors.ts). The token travels in the X-Consul-Token
 * header only; it never appears in a URL or an error message, and the package's request log events
 * (which carry the headers) are never listened to.
 *
 * Each API has its own part (kv.ts, txn.ts, catalog.ts, …), composed here on one connection. The
 * package lacks a few endpoints; those go through the package's own HTTP client (same agent, TLS,
 * token and timeouts) and are marked "not in the package" in their part.
 */
import { aclApi } from './acl';
import { agentApi } from './agent';
import { blockingApi } from './blocking';
import { catalogApi } from './catalog';
import { healthApi } from './health';
import { kvApi } from './kv';
import { operatorApi } from './operator';
import { connect } from './package';
import { sessionApi } from './session';
import { statusApi } from './status';
import { txnApi } from './txn';
import type { ConsulClient, ConsulClientSettings } from './types';

export type * from './types';
export { parseWait } from './blocking';

export function createConsulClient(settings: ConsulClientSettings): ConsulClient {
  const conn = connect(settings);
  const base = new URL(settings.baseUrl);
  const txn = txnApi(conn);
  return {
    baseUrl: `${base.protocol}//${base.host}`,
    kv: kvApi(conn, txn),
    txn,
    catalog: catalogApi(conn, txn),
    health: healthApi(conn),
    session: sessionApi(conn),
    agent: agentApi(conn, settings),
    status: statusApi(conn),
    operator: operatorApi(conn),
    acl: aclApi(conn),
    blocking: blockingApi(conn, settings),
    at(target) {
      return createConsulClient({
        ...settings,
        baseUrl: target.host
          ? `${base.protocol}//${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port ?? base.port}`
          : settings.baseUrl,
        token: target.token ?? settings.token,
        timeoutMs: target.timeoutMs ?? settings.timeoutMs,
        retries: target.retries ?? settings.retries,
        deadlineMs: undefined,
        keepAlive: false,
      });
    },
    close() {
      conn.consul.destroy();
    },
  };
}
