import type { Operations } from './operations';
import type { EmulatorEvent, ManagedInstance, Registry } from './registry';
import type { Autoscaler, Igm, Instance, Operation, Scope, Template } from './state';

/**
 * The emulator's reads: resources, operations and recent events as the registry holds them. Nothing
 * here changes state; the API methods that do (and answer with an operation) are in `ComputeEmulator`.
 */
export class EmulatorReads {
  constructor(
    protected readonly registry: Registry,
    protected readonly operations: Operations,
  ) {}

  getTemplate(name: string): Template {
    return this.registry.getTemplate(name);
  }

  listTemplates(): Template[] {
    return this.registry.listTemplates();
  }

  getIgm(scope: Scope, name: string): Igm {
    return this.registry.getIgm(scope, name);
  }

  listIgms(scope: Scope): Igm[] {
    return this.registry.listIgms(scope);
  }

  allIgms(): Igm[] {
    return this.registry.allIgms();
  }

  managedInstances(igm: Igm): ManagedInstance[] {
    return this.registry.managedInstances(igm);
  }

  getAutoscaler(scope: Scope, name: string): Autoscaler {
    return this.registry.getAutoscaler(scope, name);
  }

  listAutoscalers(scope: Scope): Autoscaler[] {
    return this.registry.listAutoscalers(scope);
  }

  allAutoscalers(): Autoscaler[] {
    return this.registry.allAutoscalers();
  }

  getInstance(zone: string, name: string): Instance {
    return this.registry.getInstance(zone, name);
  }

  listInstances(zone: string): Instance[] {
    return this.registry.listInstances(zone);
  }

  allInstances(): Instance[] {
    return this.registry.allInstances();
  }

  getOperation(scope: Scope, name: string): Operation {
    return this.operations.get(scope, name);
  }

  /** Blocks until the operation is DONE or the wait limit passes, then returns it either way. */
  waitOperation(scope: Scope, name: string): Promise<Operation> {
    return this.operations.wait(scope, name);
  }

  listOperations(scope: Scope): Operation[] {
    return this.operations.list(scope);
  }

  /** Recent lifecycle events and decisions, newest last, for the status page. */
  recentEvents(): EmulatorEvent[] {
    return this.registry.events.recent();
  }
}
