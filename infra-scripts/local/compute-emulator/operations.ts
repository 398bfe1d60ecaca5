import { ApiError, notFound } from './errors';
import type { Registry } from './registry';
import { type Actor, bounded, type Runtime, sleep } from './runtime';
import { type Operation, type Scope, scopePath } from './state';

/** What an operation is about: its scope, its type and the resource it changes. */
export interface OperationTarget {
  scope: Scope;
  operationType: string;
  targetLink: string;
  targetId: string;
}

// Finished operations are kept for a while as GCE does, but not without bound.
const keepAtMost = 5000;
const pruneTo = 4000;

/**
 * Zone and region operations: a mutation returns a RUNNING operation at once and its work runs
 * afterwards; the operation ends DONE, with Google's error fields if the work failed.
 */
export class Operations {
  private readonly operations = new Map<string, Operation>();
  private readonly done = new Map<string, Promise<void>>();

  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
  ) {}

  /** Starts `work` after the minimum operation delay; the operation finishes with its outcome. */
  run(target: OperationTarget, actor: Actor, work: (op: Operation) => Promise<void>): Operation {
    const op = this.create(target, actor.principalEmail);
    const done = (async () => {
      await sleep(this.rt.settings.operationDelayMs);
      try {
        await work(op);
        this.finish(op);
      } catch (err) {
        this.finish(op, err);
      }
    })();
    this.done.set(op.name, done);
    this.rt.track(done);
    return op;
  }

  /**
   * A RUNNING operation whose caller finishes it (or that belongs to an API operation's work), as
   * the ones a MIG starts for each instance. Without `user` it is the MIG service account's.
   */
  create(target: OperationTarget, user?: string): Operation {
    const now = this.rt.iso();
    const { ids, clock } = this.rt.settings;
    const op: Operation = {
      id: ids.numericId(),
      name: `operation-${clock()}-${ids.hex(13)}-${ids.hex(8)}-${ids.hex(8)}`,
      ...target,
      status: 'RUNNING',
      progress: 0,
      user: user ?? this.rt.migActor.principalEmail,
      insertTime: now,
      startTime: now,
    };
    this.operations.set(op.name, op);
    this.prune();
    return op;
  }

  /** Marks the operation DONE, failed if `err` is given; a second call changes nothing. */
  finish(op: Operation, err?: unknown): void {
    if (op.status === 'DONE') return;
    op.status = 'DONE';
    op.progress = 100;
    op.endTime = this.rt.iso();
    if (err !== undefined) {
      const apiErr = err instanceof ApiError ? err : undefined;
      op.errors = [
        {
          code: apiErr?.reason.toUpperCase() ?? 'INTERNAL_ERROR',
          message: err instanceof Error ? err.message : String(err),
        },
      ];
      op.httpErrorStatusCode = apiErr?.code ?? 500;
      op.httpErrorMessage = apiErr ? 'BAD REQUEST' : 'INTERNAL SERVER ERROR';
      this.rt.settings.logger.warn({ operation: op.name, err }, 'operation failed');
    }
  }

  /** Whether the named operation is not known to be DONE (a pruned one counts as not done). */
  notDone(name: string): boolean {
    return this.operations.get(name)?.status !== 'DONE';
  }

  get(scope: Scope, name: string): Operation {
    this.registry.checkScope(scope);
    const op = this.operations.get(name);
    if (!op || op.scope.kind !== scope.kind || op.scope.name !== scope.name)
      throw notFound(`${scopePath(this.rt.project, scope)}/operations/${name}`);
    return op;
  }

  /** Blocks until the operation is DONE or the wait limit passes, then returns it either way. */
  async wait(scope: Scope, name: string): Promise<Operation> {
    const op = this.get(scope, name);
    const done = this.done.get(name);
    if (op.status !== 'DONE' && done) await bounded(done, this.rt.settings.waitTimeoutMs);
    return op;
  }

  list(scope: Scope): Operation[] {
    this.registry.checkScope(scope);
    return [...this.operations.values()].filter(
      (o) => o.scope.kind === scope.kind && o.scope.name === scope.name,
    );
  }

  private prune(): void {
    if (this.operations.size <= keepAtMost) return;
    for (const [name, op] of this.operations) {
      if (this.operations.size <= pruneTo) break;
      if (op.status === 'DONE') {
        this.operations.delete(name);
        this.done.delete(name);
      }
    }
  }
}
