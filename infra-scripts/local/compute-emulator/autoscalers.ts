import type { AutoscalerLoop } from './autoscaler-loop';
import { alreadyExists, invalid, notReady } from './errors';
import type { Operations } from './operations';
import type { Registry } from './registry';
import type { Caller, Runtime } from './runtime';
import {
  type Autoscaler,
  type AutoscalingPolicy,
  lastSegment,
  links,
  type Operation,
  type Scope,
  scopePath,
} from './state';

export interface AutoscalerInsert {
  name: string;
  target: string;
  description?: string;
  autoscalingPolicy: AutoscalingPolicy;
}

export interface AutoscalerModify {
  description?: string;
  target?: string;
  autoscalingPolicy?: Partial<AutoscalingPolicy>;
}

/** The autoscalers API: insert, and patch (merge) or update (replace) of the policy. */
export class AutoscalersApi {
  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
    private readonly operations: Operations,
    private readonly loop: AutoscalerLoop,
  ) {}

  insert(scope: Scope, body: AutoscalerInsert, caller: Caller): Operation {
    const project = this.rt.project;
    this.registry.checkScope(scope);
    if (this.registry.hasAutoscaler(scope, body.name))
      throw alreadyExists(`${scopePath(project, scope)}/autoscalers/${body.name}`);
    const igm = this.registry.getIgm(scope, lastSegment(body.target));
    if (igm.autoscaler) throw invalid(`The instance group manager '${igm.name}' already has an autoscaler.`);
    checkPolicy(body.autoscalingPolicy);
    const a: Autoscaler = {
      id: this.rt.settings.ids.numericId(),
      name: body.name,
      scope,
      description: body.description ?? '',
      target: links.igm(project, scope, igm.name),
      policy: body.autoscalingPolicy,
      creationTimestamp: this.rt.iso(),
      statusDetails: [],
    };
    this.registry.addAutoscaler(a);
    igm.autoscaler = links.autoscaler(project, scope, a.name);
    return this.operations.run(
      { scope, operationType: 'insert', targetLink: igm.autoscaler, targetId: a.id },
      this.rt.apiActor(caller),
      () => Promise.resolve(),
    );
  }

  /**
   * `patch` merges `policy` into the current one, `update` replaces it. Compute v1 autoscalers carry
   * no fingerprint; like GCE, a modification while the previous one still runs is refused.
   */
  modify(
    scope: Scope,
    name: string,
    kind: 'patch' | 'update',
    body: AutoscalerModify,
    caller: Caller,
  ): Operation {
    const a = this.registry.getAutoscaler(scope, name);
    if (a.pendingOperation && this.operations.notDone(a.pendingOperation))
      throw notReady(`${scopePath(this.rt.project, scope)}/autoscalers/${name}`);
    if (body.target !== undefined && lastSegment(body.target) !== lastSegment(a.target))
      throw invalid(
        `Invalid value for field 'resource.target': '${body.target}'. The target cannot be changed.`,
      );
    const policy: AutoscalingPolicy =
      kind === 'patch'
        ? { ...a.policy, ...body.autoscalingPolicy }
        : {
            minNumReplicas: 1,
            coolDownPeriodSec: 60,
            mode: 'ON',
            customMetricUtilizations: [],
            maxNumReplicas: 0,
            ...body.autoscalingPolicy,
          };
    checkPolicy(policy);
    a.policy = policy;
    if (body.description !== undefined || kind === 'update') a.description = body.description ?? '';
    this.registry.record(
      'autoscaler',
      `${a.name}: policy ${kind} ${JSON.stringify(body.autoscalingPolicy ?? {})}`,
    );
    const op = this.operations.run(
      {
        scope,
        operationType: kind,
        targetLink: links.autoscaler(this.rt.project, scope, a.name),
        targetId: a.id,
      },
      this.rt.apiActor(caller),
      () => this.loop.runOne(a),
    );
    a.pendingOperation = op.name;
    return op;
  }
}

function checkPolicy(p: AutoscalingPolicy): void {
  if (p.maxNumReplicas < 1)
    throw invalid("Invalid value for field 'resource.autoscalingPolicy.maxNumReplicas': must be at least 1.");
  if (p.minNumReplicas > p.maxNumReplicas)
    throw invalid(
      `Invalid value for field 'resource.autoscalingPolicy.minNumReplicas': '${p.minNumReplicas}'. Must be at most maxNumReplicas (${p.maxNumReplicas}).`,
    );
  const target = p.cpuUtilization?.utilizationTarget;
  if (target !== undefined && (target <= 0 || target > 1))
    throw invalid(
      `Invalid value for field 'resource.autoscalingPolicy.cpuUtilization.utilizationTarget': '${target}'.`,
    );
}
