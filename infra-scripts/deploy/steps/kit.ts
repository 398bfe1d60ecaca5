import { topicFunctions, type TopicFunctionName } from '../../../functions/catalog';
import type { ResolvedConfig } from '../config';
import type { Check, Command, Plan, PlanInputs, Step } from '../plan';
import { APP_LABEL, names, type Names } from './names';

/** What one area contributes to the plan: its steps in order, and the lookups they name. */
export interface Part {
  steps: Step[];
  lookups?: Record<string, string[]>;
}

/** The parts in order as one plan. */
export function compose(parts: Part[]): Plan {
  return {
    steps: parts.flatMap((p) => p.steps),
    lookups: Object.assign({}, ...parts.map((p) => p.lookups ?? {})) as Record<string, string[]>,
  };
}

/** Everything a step builder reads, and the shapes its steps share. */
export interface Kit {
  c: ResolvedConfig;
  inputs: PlanInputs;
  n: Names;
  /** `--project <id>`: every command and check names the project. */
  P: string[];
  /** `--labels` value of what takes labels. */
  labels: string;
  /** `--description` of what takes none: teardown deletes only what carries it. */
  marker: string;
  /** The Consul servers' fixed private addresses. */
  serverIps: string[];
  /** A deploy step: its commands run when the check fails. */
  step(id: string, title: string, check: Check, ...run: Command[]): Step;
  /** A command with the project. */
  cmd(...args: string[]): Command;
  /** The resource `describe` names exists. */
  exists(...args: string[]): Check;
  /** The IAM policy `args` prints holds this binding. */
  hasBinding(args: string[], role: string, member: string): Check;
  /**
   * A resource created once: `<group> describe <name> <scope>` finds it, else
   * `<group> create [type] <name> <args>` makes it.
   */
  resource(
    id: string,
    title: string,
    r: { group: string[]; name: string; scope?: string[]; type?: string; args: string[] },
  ): Step;
  /** `member` gets `role` on a resource (`<group> add-iam-policy-binding <name>`), once. */
  iamGrant(id: string, title: string, group: string[], name: string, role: string, member: string): Step;
}

export function createKit(c: ResolvedConfig, inputs: PlanInputs): Kit {
  const n = names(c);
  const P = ['--project', c.project];
  const step: Kit['step'] = (id, title, check, ...run) => ({ id, title, runWhen: 'check-fails', check, run });
  const cmd: Kit['cmd'] = (...args) => ({ args: [...args, ...P] });
  const exists: Kit['exists'] = (...args) => ({
    args: [...args, ...P, '--format=value(name)'],
    expect: 'exists',
  });
  const hasBinding: Kit['hasBinding'] = (args, role, member) => ({
    args: [...args, ...P, '--format=json'],
    expect: { binding: { role, member } },
  });
  return {
    c,
    inputs,
    n,
    P,
    labels: `app=${APP_LABEL},deployment=${c.deployment}`,
    marker: `${APP_LABEL} deployment=${c.deployment}`,
    serverIps: Array.from({ length: c.consul.servers }, (_, i) => n.consulIp(i)),
    step,
    cmd,
    exists,
    hasBinding,
    resource: (id, title, { group, name, scope = [], type, args }) =>
      step(
        id,
        title,
        exists(...group, 'describe', name, ...scope),
        cmd(...group, 'create', ...(type ? [type] : []), name, ...args),
      ),
    iamGrant: (id, title, group, name, role, member) =>
      step(
        id,
        title,
        hasBinding([...group, 'get-iam-policy', name], role, member),
        cmd(...group, 'add-iam-policy-binding', name, `--member=${member}`, `--role=${role}`),
      ),
  };
}

/** The functions that hold a force-leave token: those with a Consul policy that force-leave. */
export function forceLeaveFunctions(c: ResolvedConfig, inputs: PlanInputs): TopicFunctionName[] {
  if (inputs.forceLeavePolicy === undefined) return [];
  return c.functions.filter((f) => topicFunctions[f].forceLeave && inputs.functionPolicies[f] !== undefined);
}
