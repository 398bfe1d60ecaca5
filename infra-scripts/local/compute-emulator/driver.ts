/** What the emulator needs from whatever runs an instance: the issue-3 launcher, or a test stand-in. */
export interface InstanceSpec {
  project: string;
  projectNumber: string;
  zone: string;
  name: string;
  id: string;
  /** The 127.x.y.z address the instance's processes bind. */
  ip: string;
  machineType: string;
  tags: string[];
  metadata: { key: string; value: string }[];
  labels: Record<string, string>;
}

export interface InstanceDriver {
  /** Boots the instance; resolves once it runs (its startup script has been started). */
  create(spec: InstanceSpec): Promise<void>;
  /** Stops it as GCE does on delete/stop: shutdown script first, killed after `timeoutMs`. */
  shutdown(id: string, timeoutMs: number): Promise<void>;
  /** Kills it without running the shutdown script (preemption, host error). */
  kill(id: string): Promise<void>;
  /** Freezes its processes (SIGSTOP) or thaws them. */
  freeze(id: string, frozen: boolean): Promise<void>;
  /** CPU utilization (0..1 of one core) since the previous call, if the driver can tell. */
  cpu?(id: string): Promise<number | undefined>;
}
