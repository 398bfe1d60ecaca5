import type { Logger } from '../../../shared/logging';
import type { AuditFaults } from './audit-faults';
import type { LogEntry } from './audit-log';
import type { InstanceDriver } from './driver';
import { type IdSource, randomIds } from './ids';

export interface EmulatorOptions {
  project: string;
  projectNumber?: string;
  /** Zones that exist; regions are derived from them. */
  zones: string[];
  driver: InstanceDriver;
  logger: Logger;
  /** Where audit-log entries go (the Pub/Sub topic a log sink would feed). */
  audit?: (entry: LogEntry) => Promise<void>;
  /** Duplicates, reordering and delay on the way to `audit`, as real sinks have them; off by default. */
  auditFaults?: AuditFaults;
  /** Latest custom-metric value of an instance, for autoscalers (the Monitoring store). */
  metric?: (metricType: string, instanceId: string) => number | undefined;
  ids?: IdSource;
  clock?: () => number;
  /** Instances get addresses `${addressPrefix}N` for N in 2..254. */
  addressPrefix?: string;
  /** GCE gives shutdown scripts 90 s on delete/stop; the sandbox uses less. */
  shutdownTimeoutMs?: number;
  /** Minimum time an operation stays RUNNING, so clients really have to wait. */
  operationDelayMs?: number;
  /** How long `operations.wait` blocks at most (GCE: 2 minutes). */
  waitTimeoutMs?: number;
  reconcileIntervalMs?: number;
  autoscaleIntervalMs?: number;
  /** GCE scales in only to the highest recommendation of the last 10 minutes. */
  stabilizationSec?: number;
  /** Who the audit log says called the API. */
  principalEmail?: string;
  /** How long a crashed instance stays down before its automatic restart (a host error costs a reboot). */
  restartDelayMs?: number;
  /**
   * How long a preempted instance's shutdown script may run (ACPI G2 soft off, then G3 mechanical off).
   * GCE gives Spot and preemptible VMs 30 s (Scheduling.skipGuestOsShutdown in the Compute v1
   * reference): use GCE_PREEMPTION_SHUTDOWN_MS. The default 0 kills at once, which the sandbox's
   * stale-node scenario relies on.
   */
  preemptionShutdownMs?: number;
  /** Whether a scaling schedule's start already past when it was written counts (autoscaling.ts). */
  pastScheduleStart?: 'active' | 'never';
}

export const GCE_PREEMPTION_SHUTDOWN_MS = 30_000;

export type Settings = Required<Omit<EmulatorOptions, 'audit' | 'auditFaults' | 'metric'>>;

/** Who made an API request, as the HTTP layer saw it. */
export interface Caller {
  userAgent: string;
}

/** Who the audit log and operations name as the author of a change. */
export interface Actor {
  principalEmail: string;
  userAgent: string;
  /** A MIG acting on its own: GCE's audit log then names the project by its number. */
  group?: boolean;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for `p` but no longer than `ms`, leaving no timer behind. */
export async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * What every part of the emulator shares: settings with their defaults, the clock and ids, the actors
 * it writes into operations and audit logs, and the background work that stop() must wait for.
 */
export class Runtime {
  readonly settings: Settings;
  /** The MIG service account GCE names as the author of the changes a group makes on its own. */
  readonly migActor: Actor;
  private readonly jobs = new Set<Promise<void>>();
  private stopFlag = false;
  private requestStop: () => void = () => undefined;
  /** Resolves when stop() begins, so waits (a crashed instance's reboot) end early. */
  readonly stopRequested = new Promise<void>((resolve) => (this.requestStop = resolve));

  constructor(options: EmulatorOptions) {
    this.settings = {
      project: options.project,
      projectNumber: options.projectNumber ?? '123456789012',
      zones: options.zones,
      driver: options.driver,
      logger: options.logger,
      ids: options.ids ?? randomIds,
      clock: options.clock ?? Date.now,
      addressPrefix: options.addressPrefix ?? '127.10.0.',
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 90_000,
      operationDelayMs: options.operationDelayMs ?? 100,
      waitTimeoutMs: options.waitTimeoutMs ?? 120_000,
      reconcileIntervalMs: options.reconcileIntervalMs ?? 2000,
      autoscaleIntervalMs: options.autoscaleIntervalMs ?? 5000,
      stabilizationSec: options.stabilizationSec ?? 600,
      principalEmail: options.principalEmail ?? `operator@${options.project}.iam.gserviceaccount.com`,
      restartDelayMs: options.restartDelayMs ?? 10_000,
      preemptionShutdownMs: options.preemptionShutdownMs ?? 0,
      pastScheduleStart: options.pastScheduleStart ?? 'active',
    };
    this.migActor = {
      principalEmail: `${this.settings.projectNumber}@cloudservices.gserviceaccount.com`,
      userAgent: 'GCE Managed Instance Group',
      group: true,
    };
  }

  get project(): string {
    return this.settings.project;
  }

  get stopped(): boolean {
    return this.stopFlag;
  }

  /** Marks the emulator as stopping: loops and reconciles no longer start new work. */
  stop(): void {
    this.stopFlag = true;
    this.requestStop();
  }

  /** Keeps background work in view until it settles, so stop() can wait for it. */
  track(p: Promise<void>): void {
    this.jobs.add(p);
    void p.finally(() => this.jobs.delete(p));
  }

  /** Waits for the background work in flight, at most `ms`. */
  drain(ms: number): Promise<void> {
    return bounded(Promise.allSettled([...this.jobs]), ms);
  }

  apiActor(caller: Caller): Actor {
    return { principalEmail: this.settings.principalEmail, userAgent: caller.userAgent };
  }

  iso(): string {
    return new Date(this.settings.clock()).toISOString();
  }

  fingerprint(): string {
    return Buffer.from(this.settings.ids.hex(16), 'hex').toString('base64');
  }
}
