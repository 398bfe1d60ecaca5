import { z } from 'zod';

/** The local Consul agent's view of this node: the identity the orchestrator acts on. */
export interface ConsulNodeIdentity {
  node: string;
  nodeId: string;
  datacenter: string;
  meta: Record<string, string>;
}

const agentSelfSchema = z.object({
  Config: z.object({ NodeName: z.string(), NodeID: z.string(), Datacenter: z.string() }),
  Meta: z.record(z.string(), z.string()).nullish(),
});

export function parseAgentSelf(body: unknown): ConsulNodeIdentity {
  const parsed = agentSelfSchema.parse(body);
  return {
    node: parsed.Config.NodeName,
    nodeId: parsed.Config.NodeID,
    datacenter: parsed.Config.Datacenter,
    meta: parsed.Meta ?? {},
  };
}

export interface ConsulAgentOptions {
  /** CONSUL_HTTP_ADDR, as the Consul CLI reads it. */
  httpAddr: string;
  token?: string;
  timeoutMs?: number;
}

export function consulAgentFromEnv(env: NodeJS.ProcessEnv = process.env): ConsulAgentOptions {
  const addr = env.CONSUL_HTTP_ADDR?.trim() || '127.0.0.1:8500';
  return {
    httpAddr: /^https?:\/\//.test(addr) ? addr : `http://${addr}`,
    token: env.CONSUL_HTTP_TOKEN?.trim() || undefined,
  };
}

export async function readAgentSelf(options: ConsulAgentOptions): Promise<ConsulNodeIdentity> {
  const res = await fetch(`${options.httpAddr}/v1/agent/self`, {
    headers: options.token ? { 'X-Consul-Token': options.token } : {},
    signal: AbortSignal.timeout(options.timeoutMs ?? 2_000),
  });
  if (!res.ok) throw new Error(`consul agent/self: HTTP ${res.status}`);
  return parseAgentSelf(await res.json());
}
