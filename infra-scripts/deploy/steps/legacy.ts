import type { Check, Step } from '../plan';
import { managementLines, onServer } from './consul';
import type { Kit, Part } from './kit';
import { legacyTokenRoles } from './names';

/**
 * How long the deploy waits for the client groups to finish rolling to their current templates
 * before it leaves the retirement for the next run (gcloud polls every 10 s).
 */
export const ROLLOUT_WAIT_SECONDS = 600;

/** gcloud's answer when `wait-until --version-target-reached` runs out of time (wait_utils.py). */
const ROLLOUT_TIMEOUT = 'Timeout while waiting for group to reach version target';

/**
 * Shell lines that delete the role write tokens of the version before per-instance identity (found
 * by their description, as acl-setup.sh made them) and then their policies; never `ilb-consul` or a
 * `*-default` policy. Reads both lists first: a failed read stops the script instead of deleting
 * nothing and reporting success.
 */
export function retireLines(): string[] {
  const roles = legacyTokenRoles.join(' ');
  return [
    'tokens=$(consul acl token list -format=json)',
    'policies=$(consul acl policy list -format=json)',
    'gone_tokens=0',
    'gone_policies=0',
    `for role in ${roles}; do`,
    `  for id in $(jq -r --arg d "ilb-$role agent token" '.[] | select(.Description == $d) | .AccessorID' <<<"$tokens"); do`,
    '    consul acl token delete -id "$id" >/dev/null',
    '    gone_tokens=$((gone_tokens + 1))',
    '  done',
    `  for id in $(jq -r --arg p "ilb-$role" '.[] | select(.Name == $p) | .ID' <<<"$policies"); do`,
    '    consul acl policy delete -id "$id" >/dev/null',
    '    gone_policies=$((gone_policies + 1))',
    '  done',
    'done',
    'echo "legacy role tokens: deleted $gone_tokens tokens and $gone_policies policies"',
  ];
}

/**
 * Retires what an upgraded deployment keeps from before per-instance identity: the role write
 * tokens in Consul and their secrets. Old VMs use them until their group has rolled to the current
 * template, so everything waits for `status.versionTarget.isReached` of every client group
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers: "all instances
 * are in their target version"); past ROLLOUT_WAIT_SECONDS the steps are left for the next deploy.
 * Each step is done once no legacy secret is left (the tokens go first): a fresh deployment, or
 * one already retired, runs nothing.
 */
export function legacyTokenSteps(k: Kit): Part {
  const { c, n, P } = k;
  const secretsGone = (roles: readonly string[]): Check => ({
    args: [
      'secrets',
      'list',
      // gcloud filters client-side; a regular expression with ( | $ must be quoted.
      `--filter=name~"/secrets/consul-agent-token-(${roles.join('|')})$"`,
      ...P,
      '--format=value(name)',
    ],
    expect: { equals: '' },
  });
  const all = secretsGone(legacyTokenRoles);
  const gate = 'legacy-tokens-rollout';
  const where = (role: string) =>
    role === 'frontend' ? `--zone=${c.zones[0] as string}` : `--region=${c.region}`;
  const rollout: Step = {
    ...k.step(
      gate,
      'wait until every client group runs its current template (old VMs hold the legacy role tokens)',
      all,
      ...legacyTokenRoles.map((role) =>
        k.cmd(
          'compute',
          'instance-groups',
          'managed',
          'wait-until',
          n.mig(role),
          where(role),
          '--version-target-reached',
          `--timeout=${ROLLOUT_WAIT_SECONDS}`,
        ),
      ),
    ),
    later: {
      error: ROLLOUT_TIMEOUT,
      why: 'a client group is still rolling to its current template; run the deploy again after the rollout to retire the legacy role tokens',
    },
  };
  const script = `${[...managementLines(c.project), ...retireLines()].join('\n')}\n`;
  const consul: Step = {
    ...k.step(
      'legacy-tokens-consul',
      `delete the legacy role tokens and their policies in Consul (${legacyTokenRoles.map((r) => `ilb-${r}`).join(', ')})`,
      all,
      onServer(k, script),
    ),
    after: gate,
  };
  const secrets = legacyTokenRoles.map((role): Step => ({
    ...k.step(
      `legacy-secret-${role}`,
      `delete secret ${n.agentToken(role)} (legacy role token)`,
      secretsGone([role]),
      k.cmd('secrets', 'delete', n.agentToken(role), '--quiet'),
    ),
    after: gate,
  }));
  return { steps: [rollout, consul, ...secrets] };
}
