/** Pure: what haproxy-sync reads from a rendered haproxy.cfg. */

export type Pool = 'z' | 'b';

/** One `server` line of the `backends` section: a slot, filled or not. */
export interface ConfigSlot {
  name: string;
  pool: Pool;
  addr: string;
  port: number;
  enabled: boolean;
  node: string | undefined;
}

export interface RenderedConfig {
  /** The config with every server line reduced to its slot name: equal structures need no reload. */
  structure: string;
  slots: ConfigSlot[];
}

export const backendName = 'backends';
const serverLine = /^\s*server\s+([zb]\d+)\s+(\S+):(\d+)((?:\s+[^#\s]+)*)\s*(?:#\s*node=(\S+))?\s*$/;

export function parseRenderedConfig(text: string): RenderedConfig {
  const slots: ConfigSlot[] = [];
  const structure: string[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^(\S+)\s*(\S*)/.exec(line);
    if (header && !line.startsWith('#')) section = `${header[1]} ${header[2]}`;
    const m = section === `backend ${backendName}` ? serverLine.exec(line) : null;
    if (!m) {
      structure.push(line);
      continue;
    }
    const [, name, addr, port, flags, node] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string?,
    ];
    const words = flags.trim().split(/\s+/);
    slots.push({
      name,
      pool: name[0] as Pool,
      addr,
      port: Number(port),
      enabled: !words.includes('disabled'),
      node,
    });
    structure.push(`server ${name}`);
  }
  return { structure: structure.join('\n'), slots };
}
