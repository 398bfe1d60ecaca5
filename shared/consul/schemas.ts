import { z } from 'zod';

// Consul's answers, validated: every value from Consul is untrusted input.

const stringMap = z.record(z.string(), z.string());

export const catalogNodeSchema = z.object({
  ID: z.string().optional(),
  Node: z.string(),
  Address: z.string(),
  Meta: stringMap.nullish(),
  ModifyIndex: z.number().int().nonnegative(),
});

export const catalogNodesSchema = z.array(catalogNodeSchema);

export const catalogNodeAnswerSchema = z
  .object({
    Node: catalogNodeSchema,
    Services: z
      .record(
        z.string(),
        z.object({
          ID: z.string(),
          Service: z.string(),
          Port: z.number().int(),
          Tags: z.array(z.string()).nullish(),
          Meta: stringMap.nullish(),
        }),
      )
      .nullish(),
  })
  .nullable();

export const txnAnswerSchema = z.object({
  Results: z
    .array(
      z.object({
        KV: z.object({ Key: z.string().optional(), ModifyIndex: z.number().int() }).nullish(),
        Node: z.object({ Node: z.string(), ModifyIndex: z.number().int() }).nullish(),
      }),
    )
    .nullish(),
  Errors: z.array(z.object({ OpIndex: z.number(), What: z.string() })).nullish(),
});

export const kvEntriesSchema = z.array(
  z.object({ Key: z.string(), Value: z.string().nullable(), ModifyIndex: z.number().int() }),
);

export const agentSelfSchema = z.object({
  Config: z.object({
    NodeName: z.string(),
    NodeID: z.string().optional(),
    Datacenter: z.string().optional(),
  }),
  DebugConfig: z.record(z.string(), z.unknown()).nullish(),
  Meta: stringMap.nullish(),
});

export const agentChecksSchema = z.record(
  z.string(),
  z.object({ CheckID: z.string(), Status: z.string().nullish(), Notes: z.string().nullish() }),
);

export const membersSchema = z.array(
  z.object({
    Name: z.string(),
    Addr: z.string(),
    Status: z.number().int(),
    Tags: stringMap.nullish(),
  }),
);

export const healthCheckSchema = z.object({
  Node: z.string(),
  CheckID: z.string(),
  Name: z.string(),
  Status: z.string(),
  Notes: z.string().nullish(),
  Output: z.string().nullish(),
  ServiceID: z.string().nullish(),
  ServiceName: z.string().nullish(),
});
export const healthChecksSchema = z.array(healthCheckSchema);

export const serviceHealthSchema = z.array(
  z.object({
    Node: catalogNodeSchema,
    Service: z.object({
      ID: z.string(),
      Service: z.string(),
      Address: z.string(),
      Port: z.number().int(),
      Tags: z.array(z.string()).nullish(),
      Meta: stringMap.nullish(),
    }),
    Checks: healthChecksSchema,
  }),
);

export const autopilotHealthSchema = z.object({
  Healthy: z.boolean(),
  FailureTolerance: z.number().int(),
  Servers: z
    .array(
      z.object({
        ID: z.string(),
        Name: z.string(),
        Address: z.string(),
        SerfStatus: z.string(),
        Leader: z.boolean(),
        Voter: z.boolean(),
        Healthy: z.boolean(),
      }),
    )
    .nullish(),
});

export interface CatalogNode {
  name: string;
  address: string;
  meta: Record<string, string>;
  modifyIndex: number;
}

export interface CatalogNodeDetail extends CatalogNode {
  services: { id: string; service: string; port: number; tags: string[]; meta: Record<string, string> }[];
}

export interface KvEntry {
  key: string;
  value: string;
  modifyIndex: number;
}

export interface AgentSelf {
  nodeName: string;
  nodeId: string;
  datacenter: string;
  meta: Record<string, string>;
  /** The agent's full runtime configuration, unvalidated: callers parse what they read of it. */
  debugConfig: Record<string, unknown>;
}

export interface AgentCheck {
  id: string;
  status: string;
  notes: string;
}

/** A gossip member; `status` is serf's: 1 alive, 2 leaving, 3 left, 4 failed. */
export interface Member {
  name: string;
  address: string;
  status: number;
  tags: Record<string, string>;
}

/** Autopilot's judgement of the servers: healthy is alive in gossip, in touch with the leader and caught up. */
export interface AutopilotHealth {
  healthy: boolean;
  failureTolerance: number;
  servers: { id: string; name: string; address: string; leader: boolean; voter: boolean; healthy: boolean }[];
}

export type HealthCheck = z.infer<typeof healthCheckSchema>;
export type ServiceHealth = z.infer<typeof serviceHealthSchema>[number];

/** One /v1/txn operation, in Consul's own shape. */
export type TxnOp =
  | { KV: { Verb: string; Key: string; Value?: string; Index?: number; Session?: string } }
  | {
      Node: {
        Verb: string;
        Node: { Node: string; Address?: string; Meta?: Record<string, string>; ModifyIndex?: number };
      };
    }
  | {
      Service: {
        Verb: string;
        Node: string;
        Service: { ID: string; Service: string; Port?: number; Address?: string; Tags?: string[] };
      };
    }
  | { Check: { Verb: string; Check: Record<string, unknown> } };

export type TxnResult = NonNullable<z.infer<typeof txnAnswerSchema>['Results']>[number];
export type TxnError = NonNullable<z.infer<typeof txnAnswerSchema>['Errors']>[number];
export type TxnAnswer = { ok: true; results: TxnResult[] } | { ok: false; errors: TxnError[] };
