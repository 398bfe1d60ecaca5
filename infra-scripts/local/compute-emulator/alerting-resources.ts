import {
  type Channel,
  channelSchema,
  invalid,
  ms,
  notFound,
  parse,
  type Policy,
  type PolicyInput,
  policySchema,
  randomId,
} from './alerting-schemas';
import { normalizeFilter } from './alerting-conditions';
import { channelView, policyView } from './alerting-views';
import { MonitoringError } from './monitoring';

export interface ResourceOptions {
  project: string;
  projectNumber: string;
  clock: () => number;
  /** A policy's condition or enabled flag changed: its evaluation starts over. */
  onConditionChanged: (policyId: string) => void;
}

/** The stored notification channels and alert policies, with their REST methods. */
export class AlertResources {
  readonly policies = new Map<string, Policy>();
  private readonly channels = new Map<string, Channel>();
  private readonly clock: () => number;

  constructor(private readonly o: ResourceOptions) {
    this.clock = o.clock;
  }

  channelNamed(name: string): Channel | undefined {
    return this.channels.get(name);
  }

  // ---- notificationChannels ----

  createChannel(project: string, body: unknown) {
    this.checkProject(project);
    const input = parse(channelSchema, body, 'NotificationChannel');
    const name = `projects/${this.o.project}/notificationChannels/${randomId()}`;
    this.channels.set(name, { name, input, created: ms(this.clock()) });
    return channelView(this.channels.get(name)!);
  }

  listChannels(project: string) {
    this.checkProject(project);
    return {
      notificationChannels: [...this.channels.values()].map((c) => channelView(c)),
      totalSize: this.channels.size,
    };
  }

  getChannel(project: string, id: string) {
    return channelView(this.channel(project, id));
  }

  deleteChannel(project: string, id: string, force: boolean) {
    const c = this.channel(project, id);
    const users = [...this.policies.values()].filter((p) => p.input.notificationChannels?.includes(c.name));
    if (users.length && !force)
      throw new MonitoringError(
        400,
        'FAILED_PRECONDITION',
        `Notification channel ${c.name} is referenced by alert policies; set force to delete it.`,
      );
    this.channels.delete(c.name);
    return {};
  }

  // ---- alertPolicies ----

  createPolicy(project: string, body: unknown) {
    this.checkProject(project);
    const input = validPolicy(body, (ref) => this.channels.has(ref));
    const id = randomId();
    const name = `projects/${this.o.project}/alertPolicies/${id}`;
    const policy: Policy = {
      id,
      name,
      raw: body as Record<string, unknown>,
      input,
      conditionName: `${name}/conditions/${randomId()}`,
      created: ms(this.clock()),
    };
    this.policies.set(id, policy);
    return policyView(policy);
  }

  /**
   * `alertPolicies.patch`: the fields the `updateMask` names (top-level ones here), or the whole
   * policy without a mask. A changed condition restarts its evaluation, as a new condition would;
   * the caller cancels its open incidents.
   */
  updatePolicy(project: string, id: string, body: unknown, updateMask: string | undefined) {
    const p = this.policy(project, id);
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw invalid('Invalid AlertPolicy.');
    const raw = masked(p.raw, body, updateMask);
    const input = validPolicy(raw, (ref) => this.channels.has(ref));
    const conditionChanged = JSON.stringify(input.conditions) !== JSON.stringify(p.input.conditions);
    if (conditionChanged || input.enabled !== p.input.enabled) this.o.onConditionChanged(p.id);
    Object.assign(p, { raw, input, updated: ms(this.clock()) });
    return { view: policyView(p), policy: p, conditionChanged };
  }

  listPolicies(project: string) {
    this.checkProject(project);
    return {
      alertPolicies: [...this.policies.values()].map((p) => policyView(p)),
      totalSize: this.policies.size,
    };
  }

  getPolicy(project: string, id: string) {
    return policyView(this.policy(project, id));
  }

  /** Removes a policy; the caller cancels its incidents. */
  removePolicy(project: string, id: string): Policy {
    const p = this.policy(project, id);
    this.policies.delete(id);
    return p;
  }

  private checkProject(project: string) {
    if (project !== this.o.project && project !== this.o.projectNumber)
      throw new MonitoringError(
        403,
        'PERMISSION_DENIED',
        `Permission denied on project ${project} (or it may not exist).`,
      );
  }

  private policy(project: string, id: string): Policy {
    this.checkProject(project);
    const p = this.policies.get(id);
    if (!p) throw notFound(`projects/${project}/alertPolicies/${id}`);
    return p;
  }

  private channel(project: string, id: string): Channel {
    this.checkProject(project);
    const c = this.channels.get(`projects/${this.o.project}/notificationChannels/${id}`);
    if (!c) throw notFound(`projects/${project}/notificationChannels/${id}`);
    return c;
  }
}

/** A policy body checked as Monitoring checks it: a supported filter, channels that exist. */
function validPolicy(body: unknown, channelExists: (name: string) => boolean): PolicyInput {
  const input = parse(policySchema, body, 'AlertPolicy');
  const cond = input.conditions[0]!;
  normalizeFilter((cond.conditionThreshold ?? cond.conditionAbsent)!.filter);
  const refs = [
    ...(input.notificationChannels ?? []),
    ...(input.alertStrategy?.notificationChannelStrategy ?? []).flatMap((s) => s.notificationChannelNames),
  ];
  for (const ref of refs)
    if (!channelExists(ref)) throw invalid(`Notification channel ${ref} does not exist.`);
  for (const s of input.alertStrategy?.notificationChannelStrategy ?? [])
    for (const ref of s.notificationChannelNames)
      if (!input.notificationChannels?.includes(ref))
        throw invalid(
          `notificationChannelStrategy names ${ref}, which is not among the policy's notificationChannels.`,
        );
  return input;
}

/** `updateMask` (top-level fields here) takes those fields from the body; without one, all of them. */
function masked(raw: Record<string, unknown>, body: object, updateMask: string | undefined) {
  const fields = updateMask
    ?.split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const merged: Record<string, unknown> = { ...raw };
  if (fields) {
    for (const f of fields) {
      if (!/^[a-zA-Z]+$/.test(f) || f === 'name' || !(f in policySchema.shape))
        throw invalid(`Unsupported field in update_mask: ${f}`);
      if (f in body) merged[f] = (body as Record<string, unknown>)[f];
      else delete merged[f];
    }
  } else {
    Object.assign(merged, body);
  }
  return merged;
}
