import { z } from 'zod';
import { parse } from './compute-schemas';
import type { ComputeEmulator } from './emulator';
import { notFound } from './errors';
import { igmKey, type ScopeKind } from './state';
import { type Route, route } from './router';
import { autoscalerView, igmView, instanceView, managedInstanceView } from './views';

/**
 * The emulator's own controls, not Google's: faults to inject into an instance (preempt, crash,
 * hang, unhang), instance-creation errors to inject into a group (group-errors.ts) and the whole
 * state in one read for the status page.
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
    route('POST', groupErrorsPath, (r) => {
      const b = parse(injectionBody, r.body, 'injection');
      const key = groupKeyOf(emu, r.params);
      emu.groupErrors.inject(key, {
        code: b.code,
        message: b.message ?? `Instance creation failed: ${b.code}`,
        ...(b.count !== undefined ? { count: b.count } : {}),
        ...(b.until !== undefined ? { untilMs: Date.parse(b.until) } : {}),
      });
      return { group: key, injected: b };
    }),
    route('DELETE', groupErrorsPath, (r) => {
      const key = groupKeyOf(emu, r.params);
      emu.groupErrors.clear(key);
      return { group: key, injected: null };
    }),
    route('GET', '/emulator/v1/state', () => snapshot(emu)),
  ];
}

const groupErrorsPath =
  '/emulator/v1/projects/:project/:scopeKind(zones|regions)/:location/instanceGroupManagers/:igm/errors';

/** An injected creation error: for `count` attempts, until `until` (RFC 3339), or until deleted. */
const injectionBody = z
  .object({
    code: z.string().regex(/^[A-Z][A-Z0-9_]{0,127}$/),
    message: z.string().max(1024).optional(),
    count: z.number().int().positive().optional(),
    until: z.string().datetime({ offset: true }).optional(),
  })
  .strict()
  .refine((b) => b.count === undefined || b.until === undefined, 'count or until, not both');

/** The group's key; a group that does not exist is a 404 (getIgm). */
function groupKeyOf(emu: ComputeEmulator, params: Record<string, string | undefined>): string {
  if (params.project !== emu.project) throw notFound(`projects/${params.project ?? ''}`);
  const scope = { kind: params.scopeKind as ScopeKind, name: params.location ?? '' };
  const igm = emu.getIgm(scope, params.igm ?? '');
  return igmKey(igm.scope, igm.name);
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
