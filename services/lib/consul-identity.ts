import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';

/** The local Consul agent's view of this node: the identity the orchestrator acts on. */
export interface ConsulNodeIdentity {
  node: string;
  nodeId: string;
  datacenter: string;
  meta: Record<string, string>;
}

/**
 * The local agent, from the Consul CLI's variables (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN,
 * CONSUL_HTTP_SSL, CONSUL_CACERT, …). One short attempt: the caller caches and asks again later.
 */
export function consulAgentFromEnv(env: NodeJS.ProcessEnv = process.env, timeoutMs = 2_000): ConsulClient {
  return createConsulClient({ ...loadConfig(env).consul, timeoutMs, retries: 0 });
}

export async function readAgentSelf(consul: Pick<ConsulClient, 'agent'>): Promise<ConsulNodeIdentity> {
  const self = await consul.agent.self();
  return { node: self.nodeName, nodeId: self.nodeId, datacenter: self.datacenter, meta: self.meta };
}
