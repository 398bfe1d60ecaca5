/**
 * The project's Consul access layer: every caller (functions, services, launchers, benches, tests)
 * talks to Consul through `createConsulClient`. See client.ts for what it adds to the `consul`
 * package (deadline, bounded retry, size cap, TLS, validated answers, classified errors).
 *
 *   const consul = createConsulClient({ baseUrl: 'http://127.0.0.1:8500', token, timeoutMs: 3000, retries: 2 });
 *   await consul.catalog.nodes({ nodeMeta: { role: 'backend' } });   // nodes with their metadata
 *   await consul.health.state('any');                                 // every check's state
 *   const entry = await consul.kv.get(key);                           // KV get/set/cas/delete/keys
 *   await consul.kv.cas(key, value, entry?.modifyIndex ?? 0);
 *   await consul.txn([...]);                                          // transactions
 *   const session = await consul.session.create({ ttl: '15s' });      // sessions and locks
 *   await consul.kv.acquire(lockKey, owner, session);
 *   await consul.operator.autopilotHealth();                          // servers alive and caught up
 *   await consul.agent.members();                                     // agent self/members/maintenance
 *   await consul.at({ host: node.address, port: 8500 }).agent.maintenance(true, reason);
 *   let { value, index } = await consul.blocking.healthService('backend', { passing: true });
 *   ({ value, index } = await consul.blocking.healthService('backend', { passing: true, index }));
 *
 * Failures are TransientError (retried here, then worth a redelivery) or PermanentError.
 */
export {
  createConsulClient,
  parseWait,
  type BlockingOptions,
  type CallOptions,
  type CatalogRegistration,
  type AgentServiceDefinition,
  type ConsulClient,
  type ConsulClientSettings,
  type DeleteResult,
  type ForceLeaveResult,
  type Indexed,
} from './client';
export { readJson, type StoredJson } from './kv-json';
export type {
  AgentCheck,
  AgentSelf,
  AutopilotHealth,
  CatalogNode,
  CatalogNodeDetail,
  HealthCheck,
  KvEntry,
  Member,
  ServiceHealth,
  TxnAnswer,
  TxnOp,
} from './schemas';
export { PermanentError, TransientError, classifyError } from '../errors';
export { AnswerTooLargeError } from './package';
