import type { AutoscalerLoop } from './autoscaler-loop';
import { autoscalerBody, parse, type PolicyInput } from './compute-schemas';
import { parseCron, validTimeZone } from './cron';
import { alreadyExists, ApiError, invalid, notReady } from './errors';
import { mergePatch } from './merge-patch';
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

export type PolicyRequest = PolicyInput & { maxNumReplicas: number };

export interface AutoscalerInsert {
  name: string;
  target: string;
  description?: string;
  autoscalingPolicy: PolicyRequest;
}

/**
 * A policy as stored and returned: GCE's defaults filled in. With no signal at all the autoscaler
 * scales on CPU at 0.6 (Autoscaler.autoscalingPolicy in the Compute v1 reference), and a CPU signal
 * without a target gets 0.6 too (AutoscalingPolicyCpuUtilization.utilizationTarget).
 */
export function normalizePolicy(p: PolicyRequest): AutoscalingPolicy {
  const { cpuUtilization, ...rest } = p;
  const custom = p.customMetricUtilizations ?? [];
  const noSignal = !cpuUtilization && custom.length === 0 && !p.loadBalancingUtilization;
  const cpu = cpuUtilization ?? (noSignal ? {} : undefined);
  return {
    ...rest,
    minNumReplicas: p.minNumReplicas ?? 1,
    coolDownPeriodSec: p.coolDownPeriodSec ?? 60,
    mode: p.mode ?? 'ON',
    customMetricUtilizations: custom,
    ...(cpu ? { cpuUtilization: { ...cpu, utilizationTarget: cpu.utilizationTarget ?? 0.6 } } : {}),
  };
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
    const policy = normalizePolicy(body.autoscalingPolicy);
    checkPolicy(policy);
    const a: Autoscaler = {
      id: this.rt.settings.ids.numericId(),
      name: body.name,
      scope,
      description: body.description ?? '',
      target: links.igm(project, scope, igm.name),
      policy,
      creationTimestamp: this.rt.iso(),
      statusDetails: [],
    };
    a.scheduleWrittenAt = writtenAt({}, undefined, policy, this.rt.settings.clock());
    this.registry.addAutoscaler(a);
    igm.autoscaler = links.autoscaler(project, scope, a.name);
    return this.operations.run(
      { scope, operationType: 'insert', targetLink: igm.autoscaler, targetId: a.id },
      this.rt.apiActor(caller),
      () => Promise.resolve(),
    );
  }

  /**
   * `patch` applies `body` as a JSON merge patch to the autoscaler (nested objects merge, `null`
   * deletes a key), `update` replaces it; either way the result is checked as a whole, and unknown
   * fields are refused. Compute v1 autoscalers carry no fingerprint; like GCE, a modification while
   * the previous one still runs is refused.
   */
  modify(
    scope: Scope,
    name: string,
    kind: 'patch' | 'update',
    body: Record<string, unknown>,
    caller: Caller,
  ): Operation {
    const a = this.registry.getAutoscaler(scope, name);
    if (a.pendingOperation && this.operations.notDone(a.pendingOperation))
      throw notReady(`${scopePath(this.rt.project, scope)}/autoscalers/${name}`);
    const current = {
      name: a.name,
      target: a.target,
      description: a.description,
      autoscalingPolicy: a.policy,
    };
    const next = parse(autoscalerBody, kind === 'patch' ? mergePatch(current, body) : body, 'resource');
    if (next.name !== undefined && next.name !== a.name)
      throw invalid("Invalid value for field 'resource.name': the name cannot be changed.");
    if (next.target !== undefined && lastSegment(next.target) !== lastSegment(a.target))
      throw invalid(
        `Invalid value for field 'resource.target': '${next.target}'. The target cannot be changed.`,
      );
    const requested = next.autoscalingPolicy ?? {};
    if (requested.maxNumReplicas === undefined)
      throw new ApiError(
        400,
        'required',
        "Required field 'resource.autoscalingPolicy.maxNumReplicas' not specified",
      );
    const policy = normalizePolicy({ ...requested, maxNumReplicas: requested.maxNumReplicas });
    checkPolicy(policy);
    a.scheduleWrittenAt = writtenAt(a.scheduleWrittenAt ?? {}, a.policy, policy, this.rt.settings.clock());
    a.policy = policy;
    a.description = next.description ?? '';
    this.registry.events.record(
      'autoscaler',
      `${a.name}: policy ${kind} ${JSON.stringify(body).slice(0, 500)}`,
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

/** When each schedule was written: now for a new or changed one, as before for the others. */
function writtenAt(
  before: Record<string, number>,
  old: AutoscalingPolicy | undefined,
  next: AutoscalingPolicy,
  now: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(next.scalingSchedules ?? {})) {
    const prev = old?.scalingSchedules?.[name];
    const same = prev !== undefined && JSON.stringify(prev) === JSON.stringify(s) && name in before;
    out[name] = same ? before[name]! : now;
  }
  return out;
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
  for (const [key, s] of Object.entries(p.scalingSchedules ?? {})) {
    const field = `resource.autoscalingPolicy.scalingSchedules.${key}`;
    try {
      parseCron(s.schedule);
    } catch (err) {
      throw invalid(`Invalid value for field '${field}.schedule': ${(err as Error).message}.`);
    }
    if (s.timeZone !== undefined && s.timeZone !== '' && !validTimeZone(s.timeZone))
      throw invalid(`Invalid value for field '${field}.timeZone': '${s.timeZone}'.`);
  }
}
