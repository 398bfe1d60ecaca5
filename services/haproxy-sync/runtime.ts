import { connect } from 'node:net';

import type { Pool } from './config';
import { parseStatsCsv } from './stats';

/** A server slot as the running HAProxy has it. */
export interface RuntimeSlot {
  name: string;
  pool: Pool;
  addr: string;
  port: number;
  /** Administratively out of rotation (maintenance, forced or from the config's `disabled`). */
  maint: boolean;
  /** Forced into drain (`set server ... state drain`). */
  drain: boolean;
  /** Connections still open on it: a slot is reused only once its old server is gone. */
  sessions: number;
}

/** Sends one command to an HAProxy CLI socket (stats socket or master socket) and returns the answer. */
export function haproxyCommand(socketPath: string, command: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`${command}: timed out`)));
    socket.on('connect', () => socket.end(`${command}\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** The slots of `backend` as the running worker sees them, through its admin socket. */
export async function readRuntime(adminSocket: string, backend: string): Promise<RuntimeSlot[]> {
  const [state, stat] = await Promise.all([
    haproxyCommand(adminSocket, `show servers state ${backend}`),
    haproxyCommand(adminSocket, 'show stat -1 4 -1'),
  ]);
  return parseRuntime(state, stat, backend);
}

// srv_admin_state: forced, inherited and resolver maintenance (HAProxy's SRV_ADMF_MAINT). The
// config's `disabled` bit (0x04) stays set after `state ready`, so it alone does not mean maintenance.
const maintBits = 0x01 | 0x02 | 0x20;
// SRV_ADMF_FDRAIN | SRV_ADMF_IDRAIN.
const drainBits = 0x08 | 0x10;

/** Pure: `show servers state <backend>` plus `show stat` CSV to slots. */
export function parseRuntime(serversState: string, statCsv: string, backend: string): RuntimeSlot[] {
  const lines = serversState.split('\n').filter((l) => l.trim());
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) throw new Error(`unexpected "show servers state" answer: ${serversState.slice(0, 200)}`);
  const cols = header.slice(2).trim().split(/\s+/);
  const col = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`"show servers state" lacks ${name}`);
    return i;
  };
  const [iBe, iName, iAddr, iAdmin, iPort] = [
    'be_name',
    'srv_name',
    'srv_addr',
    'srv_admin_state',
    'srv_port',
  ].map(col) as [number, number, number, number, number];

  const stats = parseStatsCsv(statCsv);
  if (!['pxname', 'svname', 'scur'].every((c) => stats.columns.includes(c)))
    throw new Error(`unexpected "show stat" answer: ${statCsv.slice(0, 200)}`);
  const sessions = new Map(
    stats.rows.filter((r) => r.pxname === backend).map((r) => [r.svname ?? '', Number(r.scur ?? 0)]),
  );

  const slots: RuntimeSlot[] = [];
  for (const line of lines) {
    if (line.startsWith('#') || !/\s/.test(line)) continue;
    const f = line.trim().split(/\s+/);
    const name = f[iName] ?? '';
    if (f[iBe] !== backend || !/^[zb]\d+$/.test(name)) continue;
    slots.push({
      name,
      pool: name[0] as Pool,
      addr: f[iAddr] ?? '',
      port: Number(f[iPort]),
      maint: (Number(f[iAdmin]) & maintBits) !== 0,
      drain: (Number(f[iAdmin]) & drainBits) !== 0,
      sessions: sessions.get(name) ?? 0,
    });
  }
  return slots;
}
