/**
 * Injected instance-creation errors (an emulator control, not Google's) and the record a group keeps
 * of them, served by `instanceGroupManagers.listErrors`. While an injection holds, a group's creation
 * fails as GCE's does on a quota or a stock-out: the error is recorded with the instance it was for,
 * the name stays in `currentActions.creating` and is retried, and no instance is created.
 * Shape: https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers/listErrors
 */

export interface Injection {
  code: string;
  message: string;
  /** Creation attempts still to fail; undefined: until `untilMs` or cleared. */
  count?: number;
  /** Emulator clock time the injection ends at; undefined: until the count is used up or cleared. */
  untilMs?: number;
}

export interface RecordedError {
  /** Sorts the group's errors in the order they happened (paging key). */
  key: string;
  timestamp: string;
  code: string;
  message: string;
  action: 'CREATING';
  instance: string;
}

/** Errors a group keeps; older ones are dropped (GCE keeps a recent history too). */
const keptPerGroup = 1000;

export class GroupErrors {
  private readonly injections = new Map<string, Injection>();
  private readonly recorded = new Map<string, RecordedError[]>();
  private seq = 0;

  constructor(private readonly clock: () => number) {}

  inject(group: string, injection: Injection): void {
    this.injections.set(group, injection);
  }

  clear(group: string): void {
    this.injections.delete(group);
  }

  /** The injection in force for one creation attempt of the group (it uses up one of a count). */
  failure(group: string): Injection | undefined {
    const i = this.injections.get(group);
    if (!i) return undefined;
    if ((i.untilMs !== undefined && this.clock() >= i.untilMs) || i.count === 0) {
      this.injections.delete(group);
      return undefined;
    }
    if (i.count !== undefined) i.count--;
    return i;
  }

  record(group: string, instance: string, failure: Injection): void {
    const list = this.recorded.get(group) ?? [];
    const timestamp = new Date(this.clock()).toISOString();
    list.push({
      key: `${timestamp}|${String(this.seq++).padStart(12, '0')}`,
      timestamp,
      code: failure.code,
      message: failure.message,
      action: 'CREATING',
      instance,
    });
    this.recorded.set(group, list.slice(-keptPerGroup));
  }

  list(group: string): RecordedError[] {
    return this.recorded.get(group) ?? [];
  }
}

/** One `listErrors` item, as Compute answers it. */
export const groupErrorView = (e: RecordedError) => ({
  error: { code: e.code, message: e.message },
  instanceActionDetails: { action: e.action, instance: e.instance },
  timestamp: e.timestamp,
});
