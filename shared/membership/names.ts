/**
 * The names membership keys are built from. Both come from an event or from Consul, which are
 * untrusted: they are checked again wherever they become part of a KV key.
 */

/** A Compute instance name (an RFC 1035 label), which is also its node's name. */
export const computeNamePattern = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A Compute instance id: a decimal uint64. */
export const instanceIdPattern = /^[0-9]{1,20}$/;
