import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { Logger } from '../../../shared/logging';
import type { Caller, ComputeEmulator } from './emulator';
import { ApiError, invalid, notFound } from './errors';
import { MonitoringError, type TimeSeriesStore } from './monitoring';
import type { Operation, Scope } from './state';
import {
  autoscalerView,
  igmView,
  instanceView,
  managedInstanceView,
  operationView,
  page,
  templateView,
} from './views';

// ---- request validation -------------------------------------------------------------------------

const name = z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a valid resource name');
const fixedOrPercent = z.object({
  fixed: z.number().int().min(0).optional(),
  percent: z.number().int().min(0).max(100).optional(),
  calculated: z.number().optional(),
});
const policyFields = {
  minNumReplicas: z.number().int().min(0).max(1000),
  maxNumReplicas: z.number().int().min(0).max(1000),
  coolDownPeriodSec: z.number().int().min(0).max(3600),
  mode: z.enum(['ON', 'OFF', 'ONLY_SCALE_OUT', 'ONLY_UP']),
  cpuUtilization: z.object({
    utilizationTarget: z.number(),
    predictiveMethod: z.enum(['NONE', 'OPTIMIZE_AVAILABILITY']).optional(),
  }),
  customMetricUtilizations: z.array(
    z.object({
      metric: z.string().min(1),
      filter: z.string().optional(),
      utilizationTarget: z.number().positive().optional(),
      utilizationTargetType: z.enum(['GAUGE', 'DELTA_PER_SECOND', 'DELTA_PER_MINUTE']).optional(),
      singleInstanceAssignment: z.number().positive().optional(),
    }),
  ),
  scaleInControl: z.object({
    maxScaledInReplicas: fixedOrPercent.optional(),
    timeWindowSec: z.number().int().min(0).max(3600).optional(),
  }),
};
const partialPolicy = z.object(policyFields).partial();
const autoscalerBody = z.object({
  name: name.optional(),
  target: z.string().optional(),
  description: z.string().optional(),
  autoscalingPolicy: partialPolicy.optional(),
});
const autoscalerInsert = z.object({
  name,
  target: z.string().min(1),
  description: z.string().optional(),
  autoscalingPolicy: partialPolicy.extend({ maxNumReplicas: policyFields.maxNumReplicas }),
});
const igmInsert = z.object({
  name,
  baseInstanceName: name.optional(),
  instanceTemplate: z.string().min(1),
  targetSize: z.number().int().min(0).max(1000),
  description: z.string().optional(),
  distributionPolicy: z.object({ zones: z.array(z.object({ zone: z.string() })).optional() }).optional(),
});
const igmPatch = z.object({
  fingerprint: z.string().optional(),
  description: z.string().optional(),
  instanceTemplate: z.string().optional(),
});
const instancesBody = z.object({ instances: z.array(z.string().min(1)).max(1000).default([]) });
const listQuery = z.object({
  maxResults: z.coerce.number().int().min(0).max(500).optional(),
  pageToken: z.string().optional(),
  filter: z.string().optional(),
  orderBy: z.string().optional(),
  returnPartialSuccess: z.enum(['true', 'false']).optional(),
});
const timeSeriesQuery = z.object({
  filter: z.string().min(1),
  'interval.endTime': z.string().min(1),
  'interval.startTime': z.string().optional(),
  pageSize: z.coerce.number().int().min(0).optional(),
  pageToken: z.string().optional(),
  view: z.enum(['FULL', 'HEADERS']).optional(),
});

function parse<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw invalid(`Invalid value for field '${[what, ...issue.path.map(String)].join('.')}': ${issue.message}`);
}

// ---- routing ------------------------------------------------------------------------------------

interface Request {
  method: string;
  params: string[];
  query: Record<string, string>;
  body: unknown;
  caller: Caller;
}

type Handler = (req: Request) => unknown;
interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export interface ServerOptions {
  emulator: ComputeEmulator;
  monitoring: TimeSeriesStore;
  logger: Logger;
  host?: string;
  port?: number;
}

export interface RunningServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves the Compute v1 subset, the Monitoring `timeSeries` subset and the emulator controls. */
export async function serve(options: ServerOptions): Promise<RunningServer> {
  const { emulator: emu, monitoring, logger } = options;
  const project = emu.project;
  const P = `/compute/v1/projects/([^/]+)`;
  const S = `(zones|regions)/([^/]+)`;
  const scope = (p: string[]): Scope => ({ kind: p[1] as Scope['kind'], name: p[2]! });
  const requestIds = new Map<string, Operation>();
  const op = (o: Operation) => operationView(project, o);
  // A retried request with the same requestId gets the original operation back, as in GCE.
  const idempotent = (req: Request, run: () => Operation) => {
    const id = req.query.requestId;
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
  ) => {
    const q = parse(listQuery, req.query, 'query');
    if (q.filter) throw new ApiError(400, 'unsupported', 'The emulator does not support list filters.');
    const r = page(items, nameOf, q.maxResults || 500, q.pageToken);
    return {
      kind,
      [field]: r.items.map(view),
      ...(r.nextPageToken ? { nextPageToken: r.nextPageToken } : {}),
    };
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: re(`${P}/global/instanceTemplates`),
      handler: (r) =>
        listed(
          r,
          emu.listTemplates(),
          (t) => t.name,
          (t) => templateView(project, t),
          'compute#instanceTemplateList',
        ),
    },
    {
      method: 'GET',
      pattern: re(`${P}/global/instanceTemplates/([^/]+)`),
      handler: (r) => templateView(project, emu.getTemplate(r.params[1]!)),
    },

    {
      method: 'GET',
      pattern: re(`${P}/${S}/instanceGroupManagers`),
      handler: (r) =>
        listed(
          r,
          emu.listIgms(scope(r.params)),
          (g) => g.name,
          (g) => igmView(project, g),
          'compute#instanceGroupManagerList',
        ),
    },
    {
      method: 'POST',
      pattern: re(`${P}/${S}/instanceGroupManagers`),
      handler: (r) => {
        const b = parse(igmInsert, r.body, 'resource');
        return idempotent(r, () =>
          emu.insertIgm(
            scope(r.params),
            { ...b, zones: b.distributionPolicy?.zones?.map((z) => z.zone) },
            r.caller,
          ),
        );
      },
    },
    {
      method: 'GET',
      pattern: re(`${P}/${S}/instanceGroupManagers/([^/]+)`),
      handler: (r) => igmView(project, emu.getIgm(scope(r.params), r.params[3]!)),
    },
    {
      method: 'PATCH',
      pattern: re(`${P}/${S}/instanceGroupManagers/([^/]+)`),
      handler: (r) => {
        const b = parse(igmPatch, r.body, 'resource');
        return idempotent(r, () => emu.patchIgm(scope(r.params), r.params[3]!, b, r.caller));
      },
    },
    {
      method: 'POST',
      pattern: re(`${P}/${S}/instanceGroupManagers/([^/]+)/listManagedInstances`),
      handler: (r) => {
        const igm = emu.getIgm(scope(r.params), r.params[3]!);
        return listed(
          r,
          emu.managedInstances(igm),
          (m) => m.slot.name,
          (m) => managedInstanceView(project, igm, m.slot, m.instance),
          '',
          'managedInstances',
        );
      },
    },
    {
      method: 'POST',
      pattern: re(`${P}/${S}/instanceGroupManagers/([^/]+)/resize`),
      handler: (r) => {
        const { size } = parse(z.object({ size: z.coerce.number().int() }), r.query, 'size');
        return idempotent(r, () => emu.resize(scope(r.params), r.params[3]!, size, r.caller));
      },
    },
    {
      method: 'POST',
      pattern: re(
        `${P}/${S}/instanceGroupManagers/([^/]+)/(deleteInstances|recreateInstances|abandonInstances)`,
      ),
      handler: (r) => {
        const { instances } = parse(instancesBody, r.body ?? {}, 'resource');
        const action = r.params[4] as 'deleteInstances' | 'recreateInstances' | 'abandonInstances';
        return idempotent(r, () =>
          emu.actOnInstances(scope(r.params), r.params[3]!, action, instances, r.caller),
        );
      },
    },

    {
      method: 'GET',
      pattern: re(`${P}/${S}/autoscalers`),
      handler: (r) =>
        listed(
          r,
          emu.listAutoscalers(scope(r.params)),
          (a) => a.name,
          (a) => autoscalerView(project, a),
          'compute#autoscalerList',
        ),
    },
    {
      method: 'POST',
      pattern: re(`${P}/${S}/autoscalers`),
      handler: (r) => {
        const b = parse(autoscalerInsert, r.body, 'resource');
        const policy = {
          minNumReplicas: 1,
          coolDownPeriodSec: 60,
          mode: 'ON' as const,
          customMetricUtilizations: [],
          ...b.autoscalingPolicy,
        };
        return idempotent(r, () =>
          emu.insertAutoscaler(scope(r.params), { ...b, autoscalingPolicy: policy }, r.caller),
        );
      },
    },
    {
      method: 'PATCH|PUT',
      pattern: re(`${P}/${S}/autoscalers`),
      handler: (r) => {
        const b = parse(autoscalerBody, r.body, 'resource');
        const target = r.query.autoscaler ?? b.name;
        if (!target) throw new ApiError(400, 'required', "Required field 'autoscaler' not specified");
        if (b.name !== undefined && b.name !== target)
          throw invalid("Invalid value for field 'resource.name': the name cannot be changed.");
        const kind = r.method === 'PATCH' ? 'patch' : 'update';
        if (kind === 'update' && b.autoscalingPolicy?.maxNumReplicas === undefined)
          throw new ApiError(
            400,
            'required',
            "Required field 'resource.autoscalingPolicy.maxNumReplicas' not specified",
          );
        return idempotent(r, () => emu.modifyAutoscaler(scope(r.params), target, kind, b, r.caller));
      },
    },
    {
      method: 'GET',
      pattern: re(`${P}/${S}/autoscalers/([^/]+)`),
      handler: (r) => autoscalerView(project, emu.getAutoscaler(scope(r.params), r.params[3]!)),
    },

    {
      method: 'GET',
      pattern: re(`${P}/zones/([^/]+)/instances`),
      handler: (r) =>
        listed(
          r,
          emu.listInstances(r.params[1]!),
          (i) => i.name,
          (i) => instanceView(project, i),
          'compute#instanceList',
        ),
    },
    {
      method: 'GET',
      pattern: re(`${P}/zones/([^/]+)/instances/([^/]+)`),
      handler: (r) => instanceView(project, emu.getInstance(r.params[1]!, r.params[2]!)),
    },
    {
      method: 'DELETE',
      pattern: re(`${P}/zones/([^/]+)/instances/([^/]+)`),
      handler: (r) => idempotent(r, () => emu.deleteInstance(r.params[1]!, r.params[2]!, r.caller)),
    },
    {
      method: 'POST',
      pattern: re(`${P}/zones/([^/]+)/instances/([^/]+)/stop`),
      handler: (r) => idempotent(r, () => emu.stopInstance(r.params[1]!, r.params[2]!, r.caller)),
    },

    {
      method: 'GET',
      pattern: re(`${P}/${S}/operations`),
      handler: (r) =>
        listed(r, emu.listOperations(scope(r.params)), (o) => o.name, op, 'compute#operationList'),
    },
    {
      method: 'GET',
      pattern: re(`${P}/${S}/operations/([^/]+)`),
      handler: (r) => op(emu.getOperation(scope(r.params), r.params[3]!)),
    },
    {
      method: 'POST',
      pattern: re(`${P}/${S}/operations/([^/]+)/wait`),
      handler: async (r) => op(await emu.waitOperation(scope(r.params), r.params[3]!)),
    },

    {
      method: 'POST',
      pattern: re(
        `/emulator/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)/(preempt|crash|hang|unhang)`,
      ),
      handler: async (r) => {
        const [, zone, inst, action] = r.params as [string, string, string, string];
        const i =
          action === 'preempt'
            ? emu.preempt(zone, inst)
            : action === 'crash'
              ? emu.crash(zone, inst)
              : await emu.hang(zone, inst, action === 'hang');
        return instanceView(project, i);
      },
    },
    { method: 'GET', pattern: /^\/emulator\/v1\/state$/, handler: () => snapshot(emu) },

    {
      method: 'POST',
      pattern: re(`/v3/projects/([^/]+)/timeSeries`),
      handler: (r) => {
        monitoring.create(r.body);
        return {};
      },
    },
    {
      method: 'GET',
      pattern: re(`/v3/projects/([^/]+)/timeSeries`),
      handler: (r) => {
        const q = timeSeriesQuery.safeParse(r.query);
        if (!q.success)
          throw new MonitoringError(
            400,
            'INVALID_ARGUMENT',
            `Invalid request: ${q.error.issues[0]!.path.join('.')}: ${q.error.issues[0]!.message}`,
          );
        return monitoring.list({
          filter: q.data.filter,
          endTime: q.data['interval.endTime'],
          startTime: q.data['interval.startTime'],
          pageSize: q.data.pageSize,
          pageToken: q.data.pageToken,
        });
      },
    },
  ];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    let status = 200;
    let payload: unknown;
    try {
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        throw new ApiError(400, 'badRequest', 'Invalid JSON payload received.');
      }
      const path = url.pathname;
      // Patterns are anchored and segments never span a slash, so at most one route matches.
      const hit = routes
        .map((route) => ({ route, m: route.pattern.exec(path) }))
        .find((x) => x.m !== null && x.route.method.split('|').includes(method));
      if (!hit?.m) throw notFound(path.replace(/^\/compute\/v1\//, ''));
      const params = hit.m.slice(1);
      if (params[0] !== project && path.startsWith('/compute/')) throw notFound(`projects/${params[0]}`);
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      payload = await hit.route.handler({
        method,
        params,
        query,
        body,
        caller: { userAgent: String(req.headers['user-agent'] ?? '') },
      });
    } catch (err) {
      if (err instanceof ApiError || err instanceof MonitoringError) {
        status = err.code;
        payload = err.toJSON();
      } else {
        logger.error({ err, method, path: url.pathname }, 'request failed');
        status = 500;
        payload = new ApiError(500, 'badRequest', 'Internal error in the emulator.').toJSON();
      }
    }
    logger.debug({ method, path: url.pathname, status }, 'request');
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(payload));
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const re = (pattern: string) => new RegExp(`^${pattern}$`);

const maxBody = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody) {
        reject(new ApiError(400, 'badRequest', 'Request body too large.'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
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
