/**
 * Every Cloud Function this repository deploys, in one place: the entry point (the name
 * `functions/index.ts` exports), its trigger, and what the deploy gives it. Pure data: the deploy
 * (`infra-scripts/deploy`) reads it without loading any function's code, and
 * `test/unit/deploy.catalog.test.ts` checks that `functions/index.ts` exports exactly these names.
 */

/** A function triggered by the messages of a Pub/Sub topic (retried, dead-lettered). */
export interface TopicFunction {
  trigger: { topic: string };
  /**
   * Its service account is `<deployment>-<serviceAccount>`; the same name is its Consul policy's
   * (`infra-scripts/acl/<consulPolicy>`) and its token secret's (`consul-token-<serviceAccount>`).
   */
  serviceAccount: string;
  /** Its Consul ACL policy file in `infra-scripts/acl/` (absent there: no Consul token). */
  consulPolicy: string;
  /** Requests one instance serves at once (above 1 needs a whole CPU). */
  concurrency: number;
  maxInstances: number;
  timeout: string;
  memory: string;
  /** The only Google Cloud permissions its code calls: its custom role. */
  permissions: readonly string[];
  /**
   * What it also calls when it runs scalingAlerts' lease pass (it does only when scalingAlerts is
   * deployed too).
   */
  leasePassPermissions?: readonly string[];
  /**
   * Force-leaves nodes after deregistering them: holds a second Consul token (force-leave.hcl,
   * `operator = "write"`). At most one function does (deploy.catalog.test.ts); the others leave a
   * failed member to Consul's own reaping (the agents' `advertise_reconnect_timeout`).
   */
  forceLeave: boolean;
}

/**
 * An HTTP entry point deployed next to a topic function: same code, account, role and tokens, its
 * own Cloud Run service and so its own `roles/run.invoker` members (`invokers`: which list of the
 * deploy config's `healthSweep` names them).
 */
export interface HttpFunction {
  trigger: 'http';
  sameAs: TopicFunctionName;
  /** Whether a request may make it act (`{"act": true}`); false: it only reports. */
  acts: boolean;
  invokers: 'invokers' | 'actInvokers';
}

/** The functions a topic triggers. Concurrency × max instances follow the bench/ figures (README). */
export const topicFunctions = {
  // ~64 events in flight at 500 events/s (bench): 4 × 32 leaves twice that.
  instanceEvents: {
    trigger: { topic: 'instance-events' },
    serviceAccount: 'fn-instance-events',
    consulPolicy: 'instance-events.hcl',
    concurrency: 32,
    maxInstances: 4,
    timeout: '120s',
    memory: '512Mi',
    permissions: ['compute.instances.get', 'compute.zoneOperations.get', 'monitoring.timeSeries.create'],
    // The one holder of the force-leave token: a deleted instance's member leaves gossip at once,
    // before its group recreates the name (docs/security.md, "Each function's token").
    forceLeave: true,
  },
  // One sweep at a time: two would race on the same catalog.
  healthSweep: {
    trigger: { topic: 'health-sweep' },
    serviceAccount: 'fn-health-sweep',
    consulPolicy: 'health-sweep.hcl',
    concurrency: 1,
    maxInstances: 1,
    timeout: '300s',
    memory: '512Mi',
    // What shared/health-sweep calls: list members, read groups and instances, recreateInstances,
    // and write its custom metrics.
    permissions: [
      'compute.instanceGroupManagers.get',
      'compute.instanceGroupManagers.list',
      'compute.instanceGroupManagers.update',
      'compute.instances.get',
      'monitoring.timeSeries.create',
    ],
    // The lease pass (shared/scaling-alerts/sweep.ts) reads and changes the rules' autoscalers (an
    // update needs `use` of the group it targets), waits on their operations, reads a group's
    // template for owner labels and the group's creation errors (`listErrors` needs `get`, Compute's
    // REST reference), and writes their metric. No `list`: it reads the autoscalers the rules name.
    leasePassPermissions: [
      'compute.autoscalers.get',
      'compute.autoscalers.update',
      'compute.instanceGroupManagers.get',
      'compute.instanceGroupManagers.use',
      'compute.instanceTemplates.get',
      'compute.regionOperations.get',
      'compute.zoneOperations.get',
    ],
    // Deregisters without force-leave: a stale node it removes is a failed member, which the
    // servers reap after its agent's advertise_reconnect_timeout; meanwhile it is never routed to.
    forceLeave: false,
  },
  // Autoscaler changes are serialised: one incident at a time.
  scalingAlerts: {
    trigger: { topic: 'scaling-alerts' },
    serviceAccount: 'fn-scaling-alerts',
    consulPolicy: 'scaling-alerts.hcl',
    concurrency: 1,
    maxInstances: 1,
    timeout: '120s',
    memory: '512Mi',
    // What shared/scaling-alerts calls: read and change autoscalers, wait on their operations, read
    // the group (its size and creation errors: `listErrors` needs `get`) and its instance template
    // (ownership by label), and write its custom metrics; read
    // the incident's alert policy, which confirms it (shared/scaling-alerts/confirm.ts).
    permissions: [
      'compute.autoscalers.get',
      'compute.autoscalers.list',
      'compute.autoscalers.update',
      'compute.instanceGroupManagers.get',
      'compute.instanceGroupManagers.use',
      'compute.instanceTemplates.get',
      'compute.regionOperations.get',
      'compute.zoneOperations.get',
      'monitoring.alertPolicies.get',
      'monitoring.timeSeries.create',
    ],
    forceLeave: false,
  },
} as const satisfies Record<string, TopicFunction>;

/** The functions a deploy config may list. */
export type TopicFunctionName = keyof typeof topicFunctions;

/** The HTTP entry points, each deployed when the topic function it shares everything with is. */
export const httpFunctions = {
  // The operators' sweep report on demand: never acts, whatever the request says.
  healthSweepHttp: { trigger: 'http', sameAs: 'healthSweep', acts: false, invokers: 'invokers' },
  // An acting sweep on demand (`{"act": true}`), for a separate, smaller list of invokers.
  healthSweepActHttp: { trigger: 'http', sameAs: 'healthSweep', acts: true, invokers: 'actInvokers' },
} as const satisfies Record<string, HttpFunction>;

/** Every entry point of the catalog: what functions/index.ts exports. */
export const entryPoints: readonly string[] = [...Object.keys(topicFunctions), ...Object.keys(httpFunctions)];
