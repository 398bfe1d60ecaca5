/** Pure: what haproxy-sync reads from a rendered haproxy.cfg, every value validated. */
import { isIPv4 } from 'node:net';

export type Pool = 'z' | 'b';

/**
 * The drain list the instanceEvents function writes: `<prefix><node-name>` with the JSON value
 * `{"instanceId":"<digits>","since":<ms>}`. haproxy.cfg.ctmpl reads the same prefix.
 */
export const drainingKeyPrefix = 'gce-ilb-orchestrator/draining/';
/** Compute Engine instance names, which every node name of a MIG member is. */
export const computeNamePattern = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const instanceIdPattern = /^\d{1,20}$/;

/** One `server` line of the `backends` section: a slot, filled or not. */
export interface ConfigSlot {
  name: string;
  pool: Pool;
  addr: string;
  port: number;
  enabled: boolean;
  node: string | undefined;
  /** The node's instance id equals the drain key's: new connections stop, existing ones finish. */
  drain: boolean;
}

/** A registration the template refused to render, as its `# skipped` comment quotes it. */
export interface SkippedRegistration {
  /** Why the template left it out (gate.ts: `SkipReason`). */
  reason: string;
  node: string;
  address: string;
}

/** A line of the backends section that is not a valid slot: the render is not trusted for a reload. */
export interface RejectedLine {
  line: number;
  reason: string;
  /** Its slot name, when recognisable: haproxy-sync loads that slot as unused instead. */
  slot?: string;
}

export interface RenderedConfig {
  /** The config with every server line reduced to its slot name: equal structures need no reload. */
  structure: string;
  slots: ConfigSlot[];
  skipped: SkippedRegistration[];
  rejected: RejectedLine[];
}

export const backendName = 'backends';
const serverLine =
  /^\s*server\s+([zb])(\d{1,4})\s+([0-9.]{7,15}):(\d{1,5})((?:\s+(?:backup|disabled))*)\s*(?:#(.*))?$/;
const skippedLine = /^\s*# skipped: ([a-z][a-z-]{0,39}) node=(".*") address=(".*")$/;

function quoted(json: string): string {
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === 'string' ? value : '?';
  } catch {
    return '?';
  }
}

/** Pure: a server line to a slot, or why it cannot be one. */
export function parseServerLine(line: string): ConfigSlot | string {
  const m = serverLine.exec(line);
  if (!m) return 'not a slot line';
  const [, pool, index, addr, port, flags, comment] = m as unknown as [
    string,
    Pool,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (!isIPv4(addr)) return 'address is not an IPv4 address';
  const portNumber = Number(port);
  if (portNumber < 1 || portNumber > 65535) return 'port out of range';
  const words = flags.trim().split(/\s+/);
  if (words.includes('backup') !== (pool === 'b')) return 'backup flag does not match the pool';
  const fields = new Map<string, string>();
  for (const token of (comment ?? '').trim().split(/\s+/).filter(Boolean)) {
    const eq = token.indexOf('=');
    const key = token.slice(0, eq);
    if (eq < 1 || !['node', 'id', 'drain-id'].includes(key) || fields.has(key)) {
      return 'unexpected comment';
    }
    fields.set(key, token.slice(eq + 1));
  }
  const node = fields.get('node');
  const id = fields.get('id');
  const drainId = fields.get('drain-id');
  if (node !== undefined && !computeNamePattern.test(node)) return 'node is not a Compute instance name';
  if ([id, drainId].some((v) => v !== undefined && !instanceIdPattern.test(v))) {
    return 'instance id is not numeric';
  }
  const enabled = !words.includes('disabled');
  if (enabled && node === undefined) return 'server without a node';
  return {
    name: `${pool}${index}`,
    pool,
    addr,
    port: portNumber,
    enabled,
    node,
    drain: enabled && id !== undefined && drainId === id,
  };
}

export function parseRenderedConfig(text: string): RenderedConfig {
  const slots: ConfigSlot[] = [];
  const skipped: SkippedRegistration[] = [];
  const rejected: RejectedLine[] = [];
  const structure: string[] = [];
  let section = '';
  text.split('\n').forEach((line, i) => {
    const header = /^(\S+)\s*(\S*)/.exec(line);
    if (header && !line.startsWith('#')) section = `${header[1]} ${header[2]}`;
    if (section !== `backend ${backendName}`) {
      structure.push(line);
      return;
    }
    const skip = skippedLine.exec(line);
    if (skip) {
      skipped.push({ reason: skip[1]!, node: quoted(skip[2]!), address: quoted(skip[3]!) });
      return;
    }
    if (!/^\s*server\s/.test(line)) {
      structure.push(line);
      return;
    }
    const slot = parseServerLine(line);
    if (typeof slot === 'string') {
      // A recognisable slot keeps the structure: the other slots still change live.
      const name = /^\s*server\s+([zb]\d{1,4})\s/.exec(line)?.[1];
      rejected.push({ line: i + 1, reason: slot, ...(name ? { slot: name } : {}) });
      structure.push(name ? `server ${name}` : `rejected server line ${i + 1}`);
      return;
    }
    slots.push(slot);
    structure.push(`server ${slot.name}`);
  });
  return { structure: structure.join('\n'), slots, skipped, rejected };
}
