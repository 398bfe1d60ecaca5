import type { Igm, Slot } from './state';

/**
 * How deleteInstances / recreateInstances / abandonInstances name instances, checked as GCE does
 * (InstanceGroupManagersDeleteInstancesRequest in the Compute v1 reference): a full URL, a partial
 * `projects/P/zones/Z/instances/N` (P the project id or number) or `zones/Z/instances/N`, or a bare
 * name; URLs and names are not mixed in one request. A malformed reference or one outside the group's
 * project and zones always fails the operation; a non-member, or a member already being deleted or
 * abandoned, fails it unless `skipInstancesOnValidationError` is set (deleteInstances only).
 */
export interface RefCheck {
  /** The members to act on, each once, in request order. */
  slots: Slot[];
  /** Problems that fail the operation whatever the request says. */
  fatal: string[];
  /** Problems that fail it unless the request says to skip such instances. */
  skippable: string[];
}

const nameRe = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const urlRe =
  /^(?:https?:\/\/[^/]+\/compute\/(?:v1|beta|alpha)\/)?(?:projects\/([^/]+)\/)?zones\/([^/]+)\/instances\/([^/]+)$/;

export function checkInstanceRefs(
  refs: string[],
  igm: Igm,
  project: { id: string; number: string },
): RefCheck {
  const out: RefCheck = { slots: [], fatal: [], skippable: [] };
  const byUrl = refs.filter((r) => r.includes('/')).length;
  if (byUrl > 0 && byUrl < refs.length) {
    out.fatal.push('Instances must be given either all by URL or all by name.');
    return out;
  }
  for (const ref of refs) {
    const m = urlRe.exec(ref);
    const [refProject, zone, name] = m ? [m[1], m[2], m[3]!] : [undefined, undefined, ref];
    if (!nameRe.test(name) || (ref.includes('/') && !m)) {
      out.fatal.push(`Invalid instance reference '${ref}'.`);
      continue;
    }
    if (refProject !== undefined && refProject !== project.id && refProject !== project.number) {
      out.fatal.push(`The instance '${ref}' is not in project '${project.id}'.`);
      continue;
    }
    if (zone !== undefined && !igm.zones.includes(zone)) {
      out.fatal.push(`The instance '${ref}' is not in a zone of the instance group '${igm.name}'.`);
      continue;
    }
    const slot = igm.slots.find((s) => s.name === name && (zone === undefined || s.zone === zone));
    if (!slot) {
      out.skippable.push(`The instance '${ref}' is not a member of the instance group '${igm.name}'.`);
    } else if (
      slot.want === 'delete' ||
      slot.want === 'abandon' ||
      slot.action === 'DELETING' ||
      slot.action === 'ABANDONING'
    ) {
      out.skippable.push(`The instance '${ref}' is already being deleted or abandoned.`);
    } else if (!out.slots.includes(slot)) {
      out.slots.push(slot);
    }
  }
  return out;
}
