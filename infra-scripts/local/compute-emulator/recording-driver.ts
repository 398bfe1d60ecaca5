import type { InstanceDriver, InstanceSpec } from './driver';

/**
 * An instance driver that starts nothing and only records what it was asked: for the deploy
 * rehearsal, whose instances must exist in the API but run no process.
 */
export class RecordingDriver implements InstanceDriver {
  readonly created: InstanceSpec[] = [];
  readonly stopped: string[] = [];

  create(spec: InstanceSpec): Promise<void> {
    this.created.push(spec);
    return Promise.resolve();
  }

  shutdown(id: string): Promise<void> {
    this.stopped.push(id);
    return Promise.resolve();
  }

  kill(id: string): Promise<void> {
    this.stopped.push(id);
    return Promise.resolve();
  }

  freeze(): Promise<void> {
    return Promise.resolve();
  }
}
