import type { GlobalOperation } from './deploy-api';
import type { ComputeEmulator } from './emulator';
import { notFound } from './errors';
import {
  type Collection,
  globalCollections,
  NetworkResources,
  regionalCollections,
} from './network-resources';
import { type Request, type Route, route } from './router';
import { apiBase, links, regionOfZone, type Scope } from './state';
import { operationView, templateView } from './views';

/**
 * Routes for what the deploy's `gcloud compute …` commands call beyond groups and autoscalers: the
 * network resources, templates, unmanaged instances, deletions, the project (read by `compute ssh`,
 * which adds its key to the common metadata), images by family, regions and zones, global operations.
 * Each mutation answers with an operation, as Compute v1 does.
 */
const project = '/compute/v1/projects/:project';

export function deployRoutes(emu: ComputeEmulator): Route[] {
  const api = emu.deploy;
  const net = api.network;
  const compute = (methods: string | string[], template: string, handler: (r: Request) => unknown): Route =>
    route(methods, template, (r) => {
      if (r.params.project !== emu.project) throw notFound(`projects/${r.params.project}`);
      return handler(r);
    });
  const global = (o: GlobalOperation) => ({
    kind: 'compute#operation',
    ...o,
    selfLink: `${apiBase}/projects/${emu.project}/global/operations/${o.name}`,
  });
  const region = (r: Request): string => {
    const name = r.params.region!;
    if (!NetworkResources.regionOf(emu.zones, name))
      throw notFound(`projects/${emu.project}/regions/${name}`);
    return name;
  };
  const regional = (r: Request): Scope => ({ kind: 'regions', name: region(r) });
  const list = (kind: string, items: unknown[]) => ({ kind: `compute#${kind}List`, items });

  const globalRoutes = globalCollections.flatMap((c: Collection) => [
    compute('GET', `${project}/global/${c}`, () => list(c.replace(/s$/, ''), net.list(c, 'global'))),
    compute('GET', `${project}/global/${c}/:name`, (r) => net.get(c, 'global', r.params.name!)),
    ...(c === 'images'
      ? []
      : [
          compute('POST', `${project}/global/${c}`, (r) =>
            global(api.globalOperation('insert', net.insert(c, 'global', r.body))),
          ),
          compute('DELETE', `${project}/global/${c}/:name`, (r) =>
            global(api.globalOperation('delete', net.delete(c, 'global', r.params.name!))),
          ),
        ]),
  ]);
  const regionalRoutes = regionalCollections.flatMap(
    (c: Collection & (typeof regionalCollections)[number]) => [
      compute('GET', `${project}/regions/:region/${c}`, (r) =>
        list(c.replace(/es$|s$/, ''), net.list(c, region(r))),
      ),
      compute('GET', `${project}/regions/:region/${c}/:name`, (r) => net.get(c, region(r), r.params.name!)),
      compute('POST', `${project}/regions/:region/${c}`, (r) =>
        operationView(
          emu.project,
          api.scopedOperation(regional(r), 'insert', net.insert(c, region(r), r.body), r.caller),
        ),
      ),
      compute('PATCH', `${project}/regions/:region/${c}/:name`, (r) =>
        operationView(
          emu.project,
          api.scopedOperation(
            regional(r),
            'patch',
            net.patch(c, region(r), r.params.name!, r.body),
            r.caller,
          ),
        ),
      ),
      compute('DELETE', `${project}/regions/:region/${c}/:name`, (r) =>
        operationView(
          emu.project,
          api.scopedOperation(regional(r), 'delete', net.delete(c, region(r), r.params.name!), r.caller),
        ),
      ),
    ],
  );

  return [
    ...globalRoutes,
    ...regionalRoutes,
    compute('GET', `${project}/global/images/family/:family`, (r) => net.fromFamily(r.params.family!)),
    compute('GET', `${project}/global/operations/:operation`, (r) =>
      global(api.getGlobalOperation(r.params.operation!)),
    ),
    compute('POST', `${project}/global/operations/:operation/wait`, (r) =>
      global(api.getGlobalOperation(r.params.operation!)),
    ),
    // `instance-templates list` asks the aggregated list (global and regional templates). Its `filter`
    // is gcloud's pre-selection: gcloud applies --filter itself to what comes back, so the whole list
    // is a correct answer for it.
    compute('GET', `${project}/aggregated/instanceTemplates`, () => ({
      kind: 'compute#instanceTemplateAggregatedList',
      items: { global: { instanceTemplates: emu.listTemplates().map((t) => templateView(emu.project, t)) } },
    })),
    compute('POST', `${project}/global/instanceTemplates`, (r) => global(api.insertTemplate(r.body))),
    compute('DELETE', `${project}/global/instanceTemplates/:template`, (r) =>
      global(api.deleteTemplate(r.params.template!)),
    ),
    ...(['instanceGroupManagers', 'autoscalers'] as const).map((collection) =>
      compute('DELETE', `${project}/:kind(zones|regions)/:location/${collection}/:name`, (r) => {
        const scope: Scope = { kind: r.params.kind as Scope['kind'], name: r.params.location! };
        const remove = collection === 'autoscalers' ? api.deleteAutoscaler : api.deleteIgm;
        return operationView(emu.project, remove.call(api, scope, r.params.name!, r.caller));
      }),
    ),
    compute('POST', `${project}/zones/:zone/instances`, (r) =>
      operationView(emu.project, api.insertInstance(r.params.zone!, r.body, r.caller)),
    ),
    compute('POST', `${project}/zones/:zone/instances/:instance/setMetadata`, (r) =>
      operationView(
        emu.project,
        api.setInstanceMetadata(r.params.zone!, r.params.instance!, r.body, r.caller),
      ),
    ),
    compute('GET', project, () => api.projectView()),
    compute('POST', `${project}/setCommonInstanceMetadata`, (r) => global(api.setCommonMetadata(r.body))),
    compute('GET', `${project}/regions/:region`, (r) => ({
      kind: 'compute#region',
      name: region(r),
      status: 'UP',
      selfLink: links.region(emu.project, region(r)),
      zones: emu.zones.filter((z) => regionOfZone(z) === region(r)).map((z) => links.zone(emu.project, z)),
    })),
    compute('GET', `${project}/zones/:zone`, (r) => {
      if (!emu.zones.includes(r.params.zone!))
        throw notFound(`projects/${emu.project}/zones/${r.params.zone}`);
      return {
        kind: 'compute#zone',
        name: r.params.zone,
        status: 'UP',
        selfLink: links.zone(emu.project, r.params.zone!),
        region: links.region(emu.project, regionOfZone(r.params.zone!)),
      };
    }),
  ];
}
