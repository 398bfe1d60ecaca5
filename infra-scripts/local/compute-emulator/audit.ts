import { type AuditFaults, faultyAudit } from './audit-faults';
import {
  type FailureStatus,
  groupActivity,
  instanceActivity,
  type LogEntry,
  type Phase,
  systemEvent,
} from './audit-log';
import { type Actor, bounded, type Runtime } from './runtime';
import type { Igm, Instance, Operation } from './state';

export type AuditWriter = (entry: LogEntry) => Promise<void>;

/**
 * The one place the emulator writes audit logs: builds entries (audit-log.ts) with the clock and ids
 * and sends them through the sink in order, one at a time, as a log sink forwards a log.
 */
export class AuditEmitter {
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly write: AuditWriter | undefined;
  private readonly flush: () => Promise<void> = () => Promise.resolve();

  constructor(
    private readonly rt: Runtime,
    write: AuditWriter | undefined,
    faults?: AuditFaults,
  ) {
    if (write && faults) {
      const faulty = faultyAudit(write, faults, (err) =>
        rt.settings.logger.error({ err }, 'audit log entry not delivered'),
      );
      this.write = faulty.write;
      this.flush = faulty.flush;
    } else {
      this.write = write;
    }
  }

  /** An activity entry for an instance operation (`first` when it starts, `last` when it ends). */
  instance(inst: Instance, methodName: string, phase: Phase, actor: Actor, op: Operation): void {
    this.emit(
      instanceActivity({
        ...this.common(),
        methodName,
        phase,
        principalEmail: actor.principalEmail,
        userAgent: actor.userAgent,
        resourceProject: actor.group ? this.rt.settings.projectNumber : this.rt.project,
        operation: { id: op.id, name: op.name, operationType: op.operationType, targetId: inst.id },
        zone: inst.zone,
        instanceName: inst.name,
        instanceId: inst.id,
      }),
    );
  }

  /**
   * An activity entry of a group request, e.g. `deleteInstances` with its `{instances}`: `first` when
   * accepted, `last` when its operation ends, carrying the failure if it failed.
   */
  group(
    igm: Igm,
    methodName: string,
    phase: Phase,
    actor: Actor,
    op: Operation,
    request: Record<string, unknown>,
    failure?: FailureStatus,
  ): void {
    this.emit(
      groupActivity({
        ...this.common(),
        methodName,
        phase,
        principalEmail: actor.principalEmail,
        userAgent: actor.userAgent,
        operation: { id: op.id, name: op.name, operationType: op.operationType, targetId: igm.id },
        scope: igm.scope,
        igmName: igm.name,
        igmId: igm.id,
        request,
        failure,
      }),
    );
  }

  /** A system event (preemption, host error, MIG repair): GCE acting on its own. */
  system(inst: Pick<Instance, 'zone' | 'name' | 'id'>, methodName: string, message: string): void {
    const { clock, ids } = this.rt.settings;
    this.emit(
      systemEvent({
        ...this.common(),
        zone: inst.zone,
        instanceName: inst.name,
        instanceId: inst.id,
        methodName,
        operationId: `systemevent-${clock()}-${ids.hex(13)}`,
        message,
      }),
    );
  }

  /** Gives entries still queued up to `ms`; nothing is written afterwards. */
  async close(ms: number): Promise<void> {
    await bounded(
      this.chain.then(() => this.flush()),
      ms,
    );
    this.closed = true;
  }

  private common() {
    const { clock, ids } = this.rt.settings;
    return { project: this.rt.project, at: new Date(clock()), insertId: ids.suffix(12) };
  }

  // Entries are chained so they arrive in order; a failed delivery is logged and the chain goes on.
  private emit(entry: LogEntry): void {
    const write = this.write;
    if (!write || this.closed) return;
    this.chain = this.chain.then(() =>
      this.closed
        ? undefined
        : write(entry).catch((err: unknown) => {
            if (!this.closed) this.rt.settings.logger.error({ err }, 'audit log entry not delivered');
          }),
    );
  }
}
