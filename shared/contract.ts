/**
 * What the images, the Consul ACL policies and the TypeScript code must agree on (ARCHITECTURE §1–2).
 * Shell scripts and HCL under packer/ and infra-scripts/acl/ cannot import this file:
 * test/unit/contract.test.ts checks that they name the same values.
 */

/** Roles of the instances; each is also a MIG base name, hence a node-name prefix. */
export const roles = ['consul', 'backend', 'frontend', 'haproxy'] as const;
export type Role = (typeof roles)[number];

/** Node metadata every agent registers (packer/consul/files/consul-bootstrap.sh). */
export const nodeMetaKeys = {
  instanceId: 'gce-instance-id',
  zone: 'gce-zone',
  project: 'gce-project',
  group: 'gce-instance-group',
  role: 'role',
} as const;

/** The Consul service each serving role registers, and its port. */
export const services = {
  backend: { name: 'backend', port: 8080 },
  haproxy: { name: 'haproxy-internal', port: 8080 },
  frontend: { name: 'frontend', port: 80 },
} as const satisfies Partial<Record<Role, { name: string; port: number }>>;

/** HTTP port of every node's Consul agent (consul-bootstrap.sh writes it into CONSUL_HTTP_ADDR). */
export const consulHttpPort = 8500;

/** The DNS name the frontend resolves to find the HAProxy tier (zone-first: `<zone>.` before it). */
export const haproxyDnsName = `${services.haproxy.name}.service.consul`;

export const checkIds = {
  /** Consul's own node-level liveness check, which the leader registers for a live gossip member. */
  serfHealth: 'serfHealth',
  /** Consul's own check for node maintenance (`consul maint`, /v1/agent/maintenance). */
  nodeMaintenance: '_node_maintenance',
  /** The fallback drain check instanceEvents registers through the catalog. */
  drain: 'gce-ilb-orchestrator-drain',
} as const;

/** Default root of the orchestrator's KV state (ORCHESTRATOR_KV_PREFIX). */
export const defaultKvPrefix = 'gce-ilb-orchestrator/';

/**
 * Every KV name of the orchestrator under its prefix (infra-scripts/acl/*.hcl grant exactly these).
 * The membership keys (records, drain list) are written by instanceEvents and reaped by healthSweep.
 */
export const kvPrefixes = (kvPrefix: string = defaultKvPrefix) => ({
  /** instanceEvents' idempotency ledger, one folder per UTC day. */
  instanceEventsLedger: `${kvPrefix}ledger/instance-events/`,
  /** Per-instance records (the maintenance the function set, the latest drain/restore times). */
  instanceRecords: `${kvPrefix}instance-events/instances/`,
  /**
   * The drain list: `<prefix>draining/<node name>` = `{"instanceId":"<digits>","since":<ms>}`. The
   * HAProxy tier's template reads it and drains a server only while its node's instance id matches.
   */
  draining: `${kvPrefix}draining/`,
  /** healthSweep's folder: `marks/<instance id>` (hysteresis), `bucket` (rate limit), `lock`. */
  healthSweep: `${kvPrefix}health-sweep/`,
  /** scalingAlerts' record of each autoscaler it changed: `autoscalers/<scope>/<name>`. */
  scalingAlertsAutoscalers: `${kvPrefix}scaling-alerts/autoscalers/`,
});

/** The roles whose instances MIGs create, delete and recreate: the only nodes instanceEvents acts on. */
export const managedRoles = ['backend', 'frontend', 'haproxy'] as const satisfies readonly Role[];
