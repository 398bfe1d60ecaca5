import type { ComputeEmulator } from './emulator';
import { type Route, route } from './router';
import { autoscalerView, igmView, instanceView, managedInstanceView } from './views';

/**
 * The emulator's own controls, not Google's: faults to inject into an instance (preempt, crash,
 * hang, unhang) and the whole state in one read for the status page.
 */
export function controlRoutes(emu: ComputeEmulator): Route[] {
  return [
    route(
      'POST',
      '/emulator/v1/projects/:project/zones/:zone/instances/:instance/:action(preempt|crash|hang|unhang)',
      async (r) => {
        const { zone, instance, action } = r.params as { zone: string; instance: string; action: string };
        const i =
          action === 'preempt'
            ? emu.preempt(zone, instance)
            : action === 'crash'
              ? emu.crash(zone, instance)
              : await emu.hang(zone, instance, action === 'hang');
        return instanceView(emu.project, i);
      },
    ),
    route('GET', '/emulator/v1/state', () => snapshot(emu)),
  ];
}

/** Everything the status page shows, in one read. */
export function snapshot(emu: ComputeEmulator) {
  const project = emu.project;
  return {
    project,
    groups: emu.allIgms().map((g) => ({
      ...igmView(project, g),
      managedInstances: emu.managedInstances(g).map((m) => ({
        ...managedInstanceView(project, g, m.slot, m.instance),
        zone: m.slot.zone,
        networkIP: m.instance?.networkIP,
        hung: m.instance?.hung ?? false,
      })),
    })),
    autoscalers: emu.allAutoscalers().map((a) => autoscalerView(project, a)),
    instances: emu
      .allInstances()
      .map((i) => ({ ...instanceView(project, i), hung: i.hung, managed: i.igm !== undefined })),
    events: emu.recentEvents(),
  };
}
