import type { TlsSettings } from '../config';
// The answer types: index.ts lists them once for callers; here they are Answer.<name>.
import type * as Answer from './schemas';

export interface ConsulClientSettings {
  /** e.g. `http://127.0.0.1:8500` or `https://10.0.0.2:8501`, no trailing slash, no `/v1`. */
  baseUrl: string;
  token?: string;
  tls?: TlsSettings;
  /** Per-attempt timeout. */
  timeoutMs: number;
  /** Further attempts after a transient failure. */
  retries: number;
  /** Overall deadline of one call, retries and backoff included (default: enough for every attempt). */
  deadlineMs?: number;
  /** Largest answer accepted, in bytes (default 8 MiB). */
  maxResponseBytes?: number;
  /** Off for one-off calls to many different agents, so no idle sockets pile up. */
  keepAlive?: boolean;
}

/** Per-call overrides, e.g. for the node's own agent that answers quickly or not at all. */
export interface CallOptions {
  timeoutMs?: number;
  retries?: number;
}

export type DeleteResult = 'deleted' | 'conflict';
export type ForceLeaveResult = 'left' | 'not-a-member';

export interface CatalogRegistration {
  node: string;
  address: string;
  nodeMeta?: Record<string, string>;
  /** Leaves the node entry (address, metadata) as it is: only adds the service or check. */
  skipNodeUpdate?: boolean;
  service?: {
    id?: string;
    service: string;
    port?: number;
    address?: string;
    tags?: string[];
    meta?: Record<string, string>;
  };
  check?: {
    checkId: string;
    name: string;
    status: 'passing' | 'warning' | 'critical';
    notes?: string;
    serviceId?: string;
  };
}

export interface AgentServiceDefinition {
  name: string;
  id?: string;
  port?: number;
  address?: string;
  tags?: string[];
  meta?: Record<string, string>;
}

/** A blocking query's answer and the index to pass to the next one. */
export interface Indexed<T> {
  value: T;
  index: number;
}

export interface BlockingOptions {
  /** The index of the previous answer; 0 answers at once. */
  index?: number;
  /** Longest wait, a Consul duration (default `30s`). */
  wait?: string;
}

export interface ConsulClient {
  /** The agent this client talks to, e.g. `http://10.0.0.2:8500`. */
  readonly baseUrl: string;
  kv: {
    get(key: string): Promise<Answer.KvEntry | null>;
    /** Every entry under `prefix` with its value, in one call (`?recurse`); [] when there is none. */
    list(prefix: string): Promise<Answer.KvEntry[]>;
    /** Keys under `prefix`; with a separator, the folders directly under it end in it. */
    keys(prefix: string, options?: { separator?: string }): Promise<string[]>;
    /** Unconditional write. */
    set(key: string, value: string): Promise<void>;
    /**
     * Compare-and-set (`index` 0: create only if absent) through /v1/txn, which unlike /v1/kv
     * answers with the new ModifyIndex. Returns it, or null when the CAS lost.
     */
    cas(key: string, value: string, index: number): Promise<number | null>;
    /** Deletes a key; with `cas`, only if its ModifyIndex is still that. False when the CAS lost. */
    delete(key: string, options?: { cas?: number }): Promise<boolean>;
    deleteTree(prefix: string): Promise<void>;
    /** Lock `key` for `session` (KV acquire); false when another session holds it. */
    acquire(key: string, value: string, session: string): Promise<boolean>;
    release(key: string, value: string, session: string): Promise<boolean>;
  };
  /** A transaction; a rolled-back one (409) is an answer with its errors, not a failure. */
  txn(ops: Answer.TxnOp[]): Promise<Answer.TxnAnswer>;
  catalog: {
    /** `maxResponseBytes`: a smaller cap for this answer (over it: AnswerTooLargeError). */
    node(name: string, options?: { maxResponseBytes?: number }): Promise<Answer.CatalogNodeDetail | null>;
    /** Every node, or those whose metadata holds each of `nodeMeta`'s pairs. */
    nodes(options?: { nodeMeta?: Record<string, string> }): Promise<Answer.CatalogNode[]>;
    register(registration: CatalogRegistration): Promise<void>;
    deregister(target: { node: string; checkId?: string; serviceId?: string }): Promise<void>;
    /** Deletes a node (and its services and checks) only if its ModifyIndex is still `modifyIndex`. */
    deleteNodeCas(name: string, modifyIndex: number): Promise<DeleteResult>;
  };
  health: {
    /** `maxResponseBytes`: a smaller cap for this answer (over it: AnswerTooLargeError). */
    node(
      name: string,
      options?: { filter?: string; maxResponseBytes?: number },
    ): Promise<Answer.HealthCheck[]>;
    service(name: string, options?: { passing?: boolean; tag?: string }): Promise<Answer.ServiceHealth[]>;
    state(
      state?: 'any' | 'passing' | 'warning' | 'critical',
      options?: { filter?: string },
    ): Promise<Answer.HealthCheck[]>;
  };
  session: {
    /** Creates a session; returns its id. */
    create(options?: {
      name?: string;
      ttl?: string;
      behavior?: 'release' | 'delete';
      lockDelay?: string;
    }): Promise<string>;
    destroy(id: string): Promise<void>;
    renew(id: string): Promise<void>;
  };
  agent: {
    self(): Promise<Answer.AgentSelf>;
    members(): Promise<Answer.Member[]>;
    checks(): Promise<Record<string, Answer.AgentCheck>>;
    /** Node maintenance on this agent (`_node_maintenance`). */
    maintenance(enable: boolean, reason?: string): Promise<void>;
    serviceMaintenance(serviceId: string, enable: boolean, reason?: string): Promise<void>;
    registerService(definition: AgentServiceDefinition): Promise<void>;
    /** Force-leave with prune; a node that is no longer a gossip member is `not-a-member`. */
    forceLeave(name: string): Promise<ForceLeaveResult>;
  };
  status: {
    /** `ip:port` of the leader, `''` while there is none. */
    leader(): Promise<string>;
    peers(): Promise<string[]>;
  };
  operator: {
    /**
     * Autopilot's health of the servers (needs `operator = "read"`). An unhealthy cluster, which
     * Consul answers with a 429, is an answer here, not a failure.
     */
    autopilotHealth(): Promise<Answer.AutopilotHealth>;
  };
  acl: {
    /** Creates a policy from HCL rules; returns its id. */
    createPolicy(name: string, rules: string): Promise<string>;
    /** Creates a token holding the named policies; returns its secret. */
    createToken(options: { policies: string[]; secretId?: string; description?: string }): Promise<string>;
    /** The accessor id of this client's token (a 403 until ACLs are bootstrapped). */
    self(): Promise<string>;
  };
  /** Blocking queries: each answers when the data changes past `index`, or after `wait`. */
  blocking: {
    kv(key: string, options?: BlockingOptions): Promise<Indexed<Answer.KvEntry | null>>;
    catalogNodes(options?: BlockingOptions): Promise<Indexed<Answer.CatalogNode[]>>;
    healthService(
      name: string,
      options?: BlockingOptions & { passing?: boolean },
    ): Promise<Indexed<Answer.ServiceHealth[]>>;
    healthState(options?: BlockingOptions): Promise<Indexed<Answer.HealthCheck[]>>;
  };
  /**
   * The same settings aimed at another agent (e.g. a node's own, reached at its catalog address),
   * optionally with another token, timeout or retries. Without keep-alive.
   */
  at(target: { host?: string; port?: number; token?: string } & CallOptions): ConsulClient;
  /** Closes idle sockets. */
  close(): void;
}
