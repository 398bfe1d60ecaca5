import { readFile } from 'node:fs/promises';
import type { Logger } from '../../../shared/logging';
import { launchInstance, type LocalInstance, type Role, roles } from '../instance';
import type { MetadataServer } from '../metadata-server';
import type { InstanceDriver, InstanceSpec } from './driver';

export interface LauncherDriverOptions {
  metadata: MetadataServer;
  logger: Logger;
  /** Extra metadata every instance gets (e.g. consul-servers, gossip key, agent token), as project metadata would. */
  projectAttributes?: Record<string, string>;
  /** Handed to the launcher as the instance's shutdown window. */
  shutdownTimeoutMs?: number;
  /** Each instance's process output, for logs or the status page. */
  onOutput?: (instance: string, unit: string, chunk: string) => void;
}

/**
 * Runs instances through the issue-3 launcher: the role's files from packer/, on the instance's own
 * 127.x address, reading its identity from its own metadata-server listener.
 */
export class LauncherDriver implements InstanceDriver {
  private readonly running = new Map<string, { spec: InstanceSpec; instance: LocalInstance }>();
  private readonly ticks = new Map<string, { at: number; ticks: number }>();

  constructor(private readonly options: LauncherDriverOptions) {}

  async create(spec: InstanceSpec): Promise<void> {
    const role = roleOf(spec);
    const attributes = {
      ...this.options.projectAttributes,
      ...Object.fromEntries(spec.metadata.map((m) => [m.key, m.value])),
    };
    const metadataHost = await this.options.metadata.addInstance({
      id: spec.id,
      name: spec.name,
      zone: spec.zone,
      ip: spec.ip,
      projectId: spec.project,
      projectNumber: spec.projectNumber,
      machineType: spec.machineType,
      tags: spec.tags,
      attributes,
    });
    try {
      const instance = await launchInstance({
        role,
        ip: spec.ip,
        metadataHost,
        shutdownTimeoutMs: this.options.shutdownTimeoutMs,
        onOutput: (unit, chunk) => this.options.onOutput?.(spec.name, unit, chunk),
      });
      this.running.set(spec.id, { spec, instance });
      this.options.logger.info({ instance: spec.name, id: spec.id, role, ip: spec.ip }, 'instance booted');
    } catch (err) {
      await this.options.metadata.removeInstance(spec.ip);
      throw err;
    }
  }

  async shutdown(id: string, timeoutMs: number): Promise<void> {
    const entry = this.running.get(id);
    if (!entry) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const outcome = await Promise.race([entry.instance.shutdown().then(() => 'done' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.options.logger.warn({ instance: entry.spec.name }, 'shutdown script overran its window; killing');
      await entry.instance.kill();
    }
    await this.forget(id);
  }

  async kill(id: string): Promise<void> {
    const entry = this.running.get(id);
    if (!entry) return;
    await entry.instance.kill();
    await this.forget(id);
  }

  async freeze(id: string, frozen: boolean): Promise<void> {
    this.running.get(id)?.instance.freeze(frozen);
  }

  /** CPU of all the instance's processes since the last call, in cores (0..1 per core used). */
  async cpu(id: string): Promise<number | undefined> {
    const entry = this.running.get(id);
    if (!entry) return undefined;
    let ticks = 0;
    for (const p of entry.instance.processes.values()) {
      const stat = await readFile(`/proc/${p.pid}/stat`, 'utf8').catch(() => undefined);
      if (!stat) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    const now = Date.now();
    const prev = this.ticks.get(id);
    this.ticks.set(id, { at: now, ticks });
    if (!prev || now <= prev.at) return undefined;
    return (ticks - prev.ticks) / 100 / ((now - prev.at) / 1000);
  }

  /** Where a running instance keeps its /etc, /opt and /run (e.g. HAProxy's admin socket). */
  rootOf(id: string): string | undefined {
    return this.running.get(id)?.instance.root;
  }

  /** Every instance still running, by name. */
  names(): string[] {
    return [...this.running.values()].map((e) => e.spec.name);
  }

  private async forget(id: string): Promise<void> {
    const entry = this.running.get(id);
    this.running.delete(id);
    this.ticks.delete(id);
    if (entry) await this.options.metadata.removeInstance(entry.spec.ip);
  }
}

/** The role comes from the template: metadata `ilb-role`, else the label `role`. */
function roleOf(spec: InstanceSpec): Role {
  const value = spec.metadata.find((m) => m.key === 'ilb-role')?.value ?? spec.labels.role;
  const role = roles.find((r) => r === value);
  if (!role)
    throw new Error(`instance ${spec.name}: template has no known role (metadata ilb-role or label role)`);
  return role;
}
