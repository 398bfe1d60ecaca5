import { z } from 'zod';
import { consulHttpPort, defaultKvPrefix } from './contract';
import { ConfigError, parseEnv, readSettingFile as readText } from './settings';

export { ConfigError };

/**
 * Environment configuration shared by the orchestrator's functions.
 *
 * Consul uses Consul's own variable names, so the same environment drives the `consul` CLI:
 *   CONSUL_HTTP_ADDR        host:port or http(s)://host:port (default 127.0.0.1:8500)
 *   CONSUL_HTTP_TOKEN       ACL token; or CONSUL_HTTP_TOKEN_FILE, a file holding it (a Secret
 *                           Manager secret mounted as a file or an env var both work)
 *   CONSUL_HTTP_SSL         true: https when CONSUL_HTTP_ADDR has no scheme
 *   CONSUL_CACERT           PEM file of the CA that signed the agents' certificates
 *   CONSUL_CLIENT_CERT/KEY  client certificate when agents verify incoming HTTPS
 *   CONSUL_HTTP_SSL_VERIFY  false: skip certificate verification (never in production)
 *   CONSUL_TLS_SERVER_NAME  SNI/verification name when it differs from the address
 *   CONSUL_FORCE_LEAVE_TOKEN  a separate token holding only `operator = "write"`, used for nothing
 *                           but force-leave (infra-scripts/acl/force-leave.hcl); or
 *                           CONSUL_FORCE_LEAVE_TOKEN_FILE; instanceEvents' alone (healthSweep
 *                           ignores it). Unset: instanceEvents does not force-leave.
 * The orchestrator's own settings:
 *   GOOGLE_CLOUD_PROJECT    when set, events about other projects are ignored
 *   DRY_RUN                 true: log every plan, change nothing
 *   COMPUTE_API_ENDPOINT    base URL of the Compute API (e.g. a local emulator http://127.0.0.1:9090)
 *   ORCHESTRATOR_KV_PREFIX  KV prefix of the orchestrator's state (default gce-ilb-orchestrator/)
 *   ORCHESTRATOR_CONSUL_TIMEOUT_MS / ORCHESTRATOR_CONSUL_RETRIES  per-request timeout, retries on
 *                           transient errors (default 3000 ms, 2)
 *   ORCHESTRATOR_AGENT_HTTP_PORT  HTTP(S) port of every node's own agent (default 8500)
 *   ORCHESTRATOR_LEDGER_IN_PROGRESS_TTL_S  how long an event stays claimed by one delivery (default 120)
 *   ORCHESTRATOR_LEDGER_RETENTION_S        how long a completed event is remembered (default 7 days,
 *                           Pub/Sub's longest retention)
 */

const flag = (fallback: boolean) => z.stringbool().default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const envSchema = z.object({
  CONSUL_HTTP_ADDR: z.string().min(1).default(`127.0.0.1:${consulHttpPort}`),
  CONSUL_HTTP_TOKEN: z.string().min(1).optional(),
  CONSUL_HTTP_TOKEN_FILE: z.string().min(1).optional(),
  CONSUL_FORCE_LEAVE_TOKEN: z.string().min(1).optional(),
  CONSUL_FORCE_LEAVE_TOKEN_FILE: z.string().min(1).optional(),
  CONSUL_HTTP_SSL: flag(false),
  CONSUL_CACERT: z.string().min(1).optional(),
  CONSUL_CLIENT_CERT: z.string().min(1).optional(),
  CONSUL_CLIENT_KEY: z.string().min(1).optional(),
  CONSUL_HTTP_SSL_VERIFY: flag(true),
  CONSUL_TLS_SERVER_NAME: z.string().min(1).optional(),
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
  DRY_RUN: flag(false),
  COMPUTE_API_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  ORCHESTRATOR_KV_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/$/, 'a KV path ending in /')
    .default(defaultKvPrefix),
  ORCHESTRATOR_CONSUL_TIMEOUT_MS: positiveInt(3000),
  ORCHESTRATOR_CONSUL_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  ORCHESTRATOR_AGENT_HTTP_PORT: positiveInt(consulHttpPort),
  ORCHESTRATOR_LEDGER_IN_PROGRESS_TTL_S: positiveInt(120),
  ORCHESTRATOR_LEDGER_RETENTION_S: positiveInt(7 * 24 * 3600),
});

export interface TlsSettings {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  serverName?: string;
}

export interface ConsulSettings {
  /** e.g. `http://127.0.0.1:8500`, no trailing slash. */
  baseUrl: string;
  token?: string;
  tls: TlsSettings;
  timeoutMs: number;
  retries: number;
  /** Port of each node's own agent, reached at the node's catalog address. */
  agentPort: number;
}

/** Options for a `@google-cloud/compute` client; empty means Google's endpoint. */
export interface ComputeEndpoint {
  apiEndpoint?: string;
  port?: number;
  protocol?: 'http' | 'https';
}

export interface OrchestratorConfig {
  consul: ConsulSettings;
  compute: ComputeEndpoint;
  project?: string;
  dryRun: boolean;
  kvPrefix: string;
  ledger: { inProgressTtlMs: number; retentionMs: number };
  /** The operator-write token for force-leave only, held apart from the main token. */
  forceLeaveToken?: string;
}

function consulBaseUrl(addr: string, ssl: boolean): string {
  const withScheme = /^[a-z]+:\/\//i.test(addr) ? addr : `${ssl ? 'https' : 'http'}://${addr}`;
  const url = new URL(withScheme);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`CONSUL_HTTP_ADDR: only http and https are supported, got ${url.protocol}`);
  }
  return `${url.protocol}//${url.host}`;
}

function computeEndpoint(value: string | undefined): ComputeEndpoint {
  if (!value) return {};
  const url = new URL(value);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    apiEndpoint: url.hostname,
    port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443,
    protocol,
  };
}

/** Parses and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): OrchestratorConfig {
  const e = parseEnv(envSchema, env);
  const token =
    e.CONSUL_HTTP_TOKEN ??
    (e.CONSUL_HTTP_TOKEN_FILE
      ? readText(e.CONSUL_HTTP_TOKEN_FILE, 'CONSUL_HTTP_TOKEN_FILE').trim()
      : undefined);
  const forceLeaveToken =
    e.CONSUL_FORCE_LEAVE_TOKEN ??
    (e.CONSUL_FORCE_LEAVE_TOKEN_FILE
      ? readText(e.CONSUL_FORCE_LEAVE_TOKEN_FILE, 'CONSUL_FORCE_LEAVE_TOKEN_FILE').trim()
      : undefined);
  return {
    consul: {
      baseUrl: consulBaseUrl(e.CONSUL_HTTP_ADDR, e.CONSUL_HTTP_SSL),
      token: token || undefined,
      tls: {
        ca: e.CONSUL_CACERT ? readText(e.CONSUL_CACERT, 'CONSUL_CACERT') : undefined,
        cert: e.CONSUL_CLIENT_CERT ? readText(e.CONSUL_CLIENT_CERT, 'CONSUL_CLIENT_CERT') : undefined,
        key: e.CONSUL_CLIENT_KEY ? readText(e.CONSUL_CLIENT_KEY, 'CONSUL_CLIENT_KEY') : undefined,
        rejectUnauthorized: e.CONSUL_HTTP_SSL_VERIFY,
        serverName: e.CONSUL_TLS_SERVER_NAME,
      },
      timeoutMs: e.ORCHESTRATOR_CONSUL_TIMEOUT_MS,
      retries: e.ORCHESTRATOR_CONSUL_RETRIES,
      agentPort: e.ORCHESTRATOR_AGENT_HTTP_PORT,
    },
    compute: computeEndpoint(e.COMPUTE_API_ENDPOINT),
    project: e.GOOGLE_CLOUD_PROJECT,
    dryRun: e.DRY_RUN,
    kvPrefix: e.ORCHESTRATOR_KV_PREFIX,
    ledger: {
      inProgressTtlMs: e.ORCHESTRATOR_LEDGER_IN_PROGRESS_TTL_S * 1000,
      retentionMs: e.ORCHESTRATOR_LEDGER_RETENTION_S * 1000,
    },
    forceLeaveToken: forceLeaveToken || undefined,
  };
}
