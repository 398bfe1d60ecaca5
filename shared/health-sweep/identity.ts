import type { HealthSweepConfig } from './config';
import type { Observation, SweepNode } from './observe';
import { byKey, type IdentityFinding, type SweepAction } from './report';

/**
 * Identity of the nodes of watched roles, checked against what no catalog write can forge: the LAN
 * gossip pool as the Consul server the sweep talks to sees it (`/v1/agent/members`, one call).
 * Consul's own rules are the evidence: the leader registers a node with its `serfHealth` check
 * when a member joins and deregisters it when the member leaves or is reaped, and it reaps a
 * catalog node that carries `serfHealth` but is no member at its next reconcile. So a node with
 * neither a member nor a `serfHealth` check is a catalog-only entry nothing else will ever remove;
 * it is deregistered (CAS on the ModifyIndex read, rate-limited). Were it a real agent's, the agent
 * would write it again at its next anti-entropy sync. Pure.
 */

/** A node of a watched role: by its name (`<role>-…`, what the role's ACL lets it write) or its metadata. */
const managed = (config: HealthSweepConfig, node: SweepNode): boolean =>
  config.groups.some((g) => node.name.startsWith(`${g.role}-`) || node.identity?.role === g.role);

export interface IdentityVerdict {
  findings: IdentityFinding[];
  /** Deregistrations of catalog-only nodes, before the gates. */
  actions: Array<Extract<SweepAction, { type: 'remove-unproven' }>>;
  /** Alive members at their own address: never stale, whatever id their metadata now claims. */
  alive: ReadonlySet<string>;
}

export function verifyIdentity(config: HealthSweepConfig, obs: Observation): IdentityVerdict {
  const findings: IdentityFinding[] = [];
  const actions: IdentityVerdict['actions'] = [];
  const alive = new Set<string>();
  const members = obs.members;
  for (const node of [...obs.nodes].sort(byKey((n) => n.name))) {
    const add = (reason: IdentityFinding['reason']) => {
      if (findings.length < config.identity.maxFindings)
        findings.push({ node: node.name, reason, address: node.address });
    };
    // Its checks were not read (read.ts): reported, and nothing else is concluded about it.
    if (node.health === 'unknown') {
      add('oversized');
      continue;
    }
    if (!managed(config, node)) continue;
    if (node.foreignChecks > 0) add('foreign-check');
    if (!members) continue;
    const member = members.get(node.name);
    if (member?.status === 1 && member.address === node.address) alive.add(node.name);
    if (member?.status === 1 && member.address !== node.address) add('address-mismatch');
    if (!member && node.serf === 'absent') {
      add('not-a-member');
      if (config.identity.removeUnproven && actions.length < config.identity.maxFindings) {
        actions.push({
          type: 'remove-unproven',
          node: node.name,
          modifyIndex: node.modifyIndex,
          zone: node.identity?.zone ?? '',
        });
      }
    } else if (!node.identity) add('no-identity');
  }
  return { findings, actions, alive };
}
