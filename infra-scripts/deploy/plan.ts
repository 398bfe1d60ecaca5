import type { TopicFunctionName } from '../../functions/catalog';
import type { ResolvedConfig } from './config';
import { consulAclSteps, consulServerSteps } from './steps/consul';
import { functionSteps } from './steps/functions';
import { instanceGroupSteps } from './steps/groups';
import { identitySteps } from './steps/identity';
import { compose, createKit } from './steps/kit';
import { legacyTokenSteps } from './steps/legacy';
import { monitoringSteps } from './steps/monitoring';
import { addressSteps, firewallSteps, networkSteps } from './steps/network';
import { sinkSteps, topicSteps } from './steps/pubsub';
import { schedulerSteps } from './steps/scheduler';
import { secretSteps } from './steps/secrets';

/**
 * The pure core of the deploy: configuration in, an ordered list of `gcloud` steps out, built by
 * one step builder per area (`steps/`). Each step has a check that the runner evaluates first
 * (describe / list / get-iam-policy), so a second run finds everything and changes nothing, and a
 * run after a failure resumes where it stopped.
 *
 * Arguments may name a lookup as `@{name}`: a value only Google knows once earlier steps ran (the
 * project number, a sink's writer identity, the subscription Eventarc made for a function). The
 * runner resolves it with the lookup's own read-only `gcloud` command when a step needs it.
 */

export type Expect =
  | 'exists'
  | 'nonEmpty'
  | { equals: string }
  | { contains: string }
  /**
   * The JSON IAM policy printed by `get-iam-policy --format=json` holds this binding; with
   * `condition`, one whose condition has that title (null: one without a condition).
   */
  | { binding: { role: string; member: string; condition?: string | null } };

export interface Check {
  args: string[];
  expect: Expect;
}

/** What a command reads on stdin: generated secret material (never printed) or a script. */
export type Stdin =
  | { secret: 'gossip-key' | 'uuid' | 'ca-cert' | 'ca-key' | 'server-cert' | 'server-key' }
  | { script: string; lines: number };

export interface Command {
  args: string[];
  stdin?: Stdin;
}

export interface Step {
  id: string;
  title: string;
  /** Deploy: run when the check fails. Teardown: run when it passes (the resource is ours). */
  runWhen: 'check-fails' | 'check-passes';
  check: Check;
  run: Command[];
  /** Secret-generating steps share one generated TLS bundle across their commands. */
  tls?: { dnsNames: string[]; ips: string[] };
  /** Deploy: teardown leaves what this step made, for this reason. */
  keepOnTeardown?: string;
  /**
   * Teardown: a failure Google keeps answering for a while after an earlier delete (its error
   * matches the regular expression `error`) leaves the resource for a later run, instead of stopping.
   */
  later?: { error: string; why: string };
  /** Teardown: left for a later run, not run, when the step with this id was. */
  after?: string;
}

export interface Plan {
  steps: Step[];
  /** `@{name}` → the read-only command printing its value. */
  lookups: Record<string, string[]>;
}

/** What the CLI reads from the repository for the plan (the plan itself reads nothing). */
export interface PlanInputs {
  /** Hash of the functions' source (package files, functions/, shared/): a change redeploys them. */
  sourceHash: string;
  /** Consul ACL policies of the agents: `packer/consul/files/acl/<name>.hcl` → rules. */
  agentPolicies: Record<string, string>;
  /** Consul ACL policy of each function that talks to Consul (its catalog entry's `consulPolicy`). */
  functionPolicies: Partial<Record<TopicFunctionName, string>>;
  /**
   * `infra-scripts/acl/force-leave.hcl`: the policy of the force-leave token each function with
   * `forceLeave` holds apart from its main token; absent: no such token, no force-leave.
   */
  forceLeavePolicy?: string;
}

/**
 * The areas in the order they depend on each other: accounts before what they are granted, secrets
 * before the VMs that read them, the servers before their ACLs, the groups' autoscalers before the
 * functions whose rules name them, topics before what publishes to them.
 */
export function deployPlan(c: ResolvedConfig, inputs: PlanInputs): Plan {
  const k = createKit(c, inputs);
  // The service agents' identities carry the project number.
  const projectNumber = ['projects', 'describe', c.project, '--format=value(projectNumber)'];
  return compose([
    { steps: [], lookups: { projectNumber } },
    networkSteps(k),
    identitySteps(k),
    secretSteps(k),
    addressSteps(k),
    firewallSteps(k),
    consulServerSteps(k),
    consulAclSteps(k),
    instanceGroupSteps(k),
    topicSteps(k),
    sinkSteps(k),
    monitoringSteps(k),
    schedulerSteps(k),
    functionSteps(k),
    // Last: the groups roll meanwhile, and a wait for their rollout holds up nothing else.
    legacyTokenSteps(k),
  ]);
}
