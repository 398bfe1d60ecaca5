import type { Runtime } from './runtime';

export interface EmulatorEvent {
  at: string;
  kind: string;
  message: string;
}

/** The recent lifecycle events and decisions the status page shows, the newest 200. */
export class EventLog {
  private readonly events: EmulatorEvent[] = [];

  constructor(private readonly rt: Runtime) {}

  record(kind: string, message: string): void {
    this.events.push({ at: this.rt.iso(), kind, message });
    if (this.events.length > 200) this.events.splice(0, this.events.length - 200);
  }

  recent(): EmulatorEvent[] {
    return [...this.events];
  }
}

/** The instance addresses of the emulated subnet (`.2` to `.254`); a deleted instance gives its back. */
export class AddressPool {
  private readonly free: string[] = [];

  constructor(prefix: string) {
    for (let n = 2; n <= 254; n++) this.free.push(`${prefix}${n}`);
  }

  take(): string | undefined {
    return this.free.shift();
  }

  release(ip: string): void {
    this.free.push(ip);
  }
}
