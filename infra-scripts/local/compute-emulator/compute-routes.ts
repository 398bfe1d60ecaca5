import {
  autoscalerInsert,
  deleteInstancesBody,
  igmInsert,
  igmPatch,
  instancesBody,
  listQuery,
  mergePatchBody,
  parse,
  requestId,
  resizeQuery,
} from './compute-schemas';
import { deployRoutes } from './deploy-routes';
import type { ComputeEmulator } from './emulator';
import { ApiError, notFound } from './errors';
import { groupErrorView } from './group-errors';
import type { InstancesAction } from './groups';
import { type Handler, type Request, type Route, route } from './router';
import { igmKey, type Operation, type Scope, type ScopeKind } from './state';
import {
  autoscalerView,
  igmView,
  instanceView,
  managedInstanceView,
  operationView,
  page,
  templateView,
} from './views';

const project = '/compute/v1/projects/:project';
const scoped = `${project}/:scopeKind(zones|regions)/:location`;
const zonal = `${project}/zones/:zone`;

const scopeOf = (r: Request): Scope => ({
  kind: r.params.scopeKind as ScopeKind,
  name: r.params.location!,
});

/** What every compute route shares: the project check, requestId idempotency and paged lists. */
function computeKit(emu: ComputeEmulator) {
  const requestIds = new Map<string, Operation>();
  const op = (o: Operation) => operationView(emu.project, o);

  // Every compute route serves only the emulator's project.
  const compute = (methods: string | string[], template: string, handler: Handler): Route =>
    route(methods, template, (r) => {
      if (r.params.project !== emu.project) throw notFound(`projects/${r.params.project}`);
      return handler(r);
    });

  // A retried request with the same requestId gets the original operation back, as in GCE.
  const idempotent = (req: Request, run: () => Operation) => {
    const id =
      req.query.requestId === undefined ? undefined : parse(requestId, req.query.requestId, 'requestId');
    const prior = id ? requestIds.get(id) : undefined;
    if (prior) return op(prior);
    const o = run();
    if (id) {
      requestIds.set(id, o);
      if (requestIds.size > 10_000) requestIds.delete(requestIds.keys().next().value!);
    }
    return op(o);
  };

  const listed = <T>(
    req: Request,
    items: T[],
    nameOf: (t: T) => string,
    view: (t: T) => unknown,
    kind: string,
    field = 'items',
    pageless = false,
  ) => {
    const q = parse(listQuery, req.query, 'query');
    if (q.filter) throw new ApiError(400, 'unsupported', 'The emulator does not support list filters.');
    const r = pageless
      ? page(items, nameOf, items.length, undefined)
      : page(items, nameOf, q.maxResults || 500, q.pageToken);
    return {
      kind,
      [field]: r.items.map(view),
      ...(r.nextPageToken ? { nextPageToken: r.nextPageToken } : {}),
    };
  };
  return { op, compute, idempotent, listed };
}

type Kit = ReturnType<typeof computeKit>;

/** instanceGroupManagers: list, insert, get, patch, listManagedInstances, listErrors, resize and the instance actions. */
function igmRoutes(emu: ComputeEmulator, { compute, idempotent, listed }: Kit): Route[] {
  const igmPath = `${scoped}/instanceGroupManagers/:igm`;
  const igmOf = (r: Request) => emu.getIgm(scopeOf(r), r.params.igm!);
  return [
    compute('GET', `${scoped}/instanceGroupManagers`, (r) =>
      listed(
        r,
        emu.listIgms(scopeOf(r)),
        (g) => g.name,
        (g) => igmView(emu.project, g),
        'compute#instanceGroupManagerList',
      ),
    ),
    compute('POST', `${scoped}/instanceGroupManagers`, (r) => {
      const b = parse(igmInsert, r.body, 'resource');
      return idempotent(r, () =>
        emu.insertIgm(scopeOf(r), { ...b, zones: b.distributionPolicy?.zones?.map((z) => z.zone) }, r.caller),
      );
    }),
    compute('GET', igmPath, (r) => igmView(emu.project, igmOf(r))),
    compute('PATCH', igmPath, (r) => {
      const b = parse(igmPatch, r.body, 'resource');
      return idempotent(r, () => emu.patchIgm(scopeOf(r), r.params.igm!, b, r.caller));
    }),
    compute('POST', `${igmPath}/listManagedInstances`, (r) => {
      const igm = igmOf(r);
      return listed(
        r,
        emu.managedInstances(igm),
        (m) => m.slot.name,
        (m) => managedInstanceView(emu.project, igm, m.slot, m.instance),
        '',
        'managedInstances',
        (igm.listManagedInstancesResults ?? 'PAGELESS') === 'PAGELESS',
      );
    }),
    compute('GET', `${igmPath}/listErrors`, (r) => {
      const igm = igmOf(r);
      const errors = emu.groupErrors.list(igmKey(igm.scope, igm.name));
      return listed(r, errors, (e) => e.key, groupErrorView, '');
    }),
    compute('POST', `${igmPath}/resize`, (r) => {
      const { size } = parse(resizeQuery, r.query, 'size');
      return idempotent(r, () => emu.resize(scopeOf(r), r.params.igm!, size, r.caller));
    }),
    compute('POST', `${igmPath}/:action(deleteInstances|recreateInstances|abandonInstances)`, (r) => {
      const action = r.params.action as InstancesAction;
      const { instances, ...options } =
        action === 'deleteInstances'
          ? parse(deleteInstancesBody, r.body ?? {}, 'resource')
          : parse(instancesBody, r.body ?? {}, 'resource');
      return idempotent(r, () =>
        emu.actOnInstances(scopeOf(r), r.params.igm!, action, instances, r.caller, options),
      );
    }),
  ];
}

/** The Compute v1 subset: templates, groups, autoscalers, instances and operations. */
export function computeRoutes(emu: ComputeEmulator): Route[] {
  const kit = computeKit(emu);
  const { op, compute, idempotent, listed } = kit;
  return [
    // ---- instance templates ----
    compute('GET', `${project}/global/instanceTemplates`, (r) =>
      listed(
        r,
        emu.listTemplates(),
        (t) => t.name,
        (t) => templateView(emu.project, t),
        'compute#instanceTemplateList',
      ),
    ),
    compute('GET', `${project}/global/instanceTemplates/:template`, (r) =>
      templateView(emu.project, emu.getTemplate(r.params.template!)),
    ),
    ...igmRoutes(emu, kit),

    // ---- autoscalers ----
    compute('GET', `${scoped}/autoscalers`, (r) =>
      listed(
        r,
        emu.listAutoscalers(scopeOf(r)),
        (a) => a.name,
        (a) => autoscalerView(emu.project, a),
        'compute#autoscalerList',
      ),
    ),
    compute('POST', `${scoped}/autoscalers`, (r) => {
      const b = parse(autoscalerInsert, r.body, 'resource');
      return idempotent(r, () => emu.insertAutoscaler(scopeOf(r), b, r.caller));
    }),
    // patch and update name the autoscaler in the query, as compute v1 does.
    compute(['PATCH', 'PUT'], `${scoped}/autoscalers`, (r) => {
      const b = parse(mergePatchBody, r.body, 'resource');
      const target = r.query.autoscaler ?? (typeof b.name === 'string' ? b.name : undefined);
      if (!target) throw new ApiError(400, 'required', "Required field 'autoscaler' not specified");
      const kind = r.method === 'PATCH' ? 'patch' : 'update';
      return idempotent(r, () => emu.modifyAutoscaler(scopeOf(r), target, kind, b, r.caller));
    }),
    compute('GET', `${scoped}/autoscalers/:autoscaler`, (r) =>
      autoscalerView(emu.project, emu.getAutoscaler(scopeOf(r), r.params.autoscaler!)),
    ),

    // ---- instances ----
    compute('GET', `${zonal}/instances`, (r) =>
      listed(
        r,
        emu.listInstances(r.params.zone!),
        (i) => i.name,
        (i) => instanceView(emu.project, i),
        'compute#instanceList',
      ),
    ),
    compute('GET', `${zonal}/instances/:instance`, (r) =>
      instanceView(emu.project, emu.getInstance(r.params.zone!, r.params.instance!)),
    ),
    compute('DELETE', `${zonal}/instances/:instance`, (r) =>
      idempotent(r, () => emu.deleteInstance(r.params.zone!, r.params.instance!, r.caller)),
    ),
    compute('POST', `${zonal}/instances/:instance/stop`, (r) =>
      idempotent(r, () => emu.stopInstance(r.params.zone!, r.params.instance!, r.caller)),
    ),

    // ---- operations ----
    compute('GET', `${scoped}/operations`, (r) =>
      listed(r, emu.listOperations(scopeOf(r)), (o) => o.name, op, 'compute#operationList'),
    ),
    compute('GET', `${scoped}/operations/:operation`, (r) =>
      op(emu.getOperation(scopeOf(r), r.params.operation!)),
    ),
    compute('POST', `${scoped}/operations/:operation/wait`, async (r) =>
      op(await emu.waitOperation(scopeOf(r), r.params.operation!)),
    ),
    ...deployRoutes(emu),
  ];
}
