import type { Caller } from './runtime';

/**
 * A small router over path templates such as `/compute/v1/projects/:project/:kind(zones|regions)/:scope`:
 * a `:name` segment matches one non-empty path segment, `:name(a|b)` only the listed values.
 */
export interface Request {
  method: string;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  caller: Caller;
}

export type Handler = (req: Request) => unknown;

export interface Route {
  methods: string[];
  template: string;
  handler: Handler;
}

type Segment = { literal: string } | { param: string; oneOf?: string[] };

interface CompiledRoute extends Route {
  segments: Segment[];
}

export function route(methods: string | string[], template: string, handler: Handler): Route {
  return { methods: typeof methods === 'string' ? [methods] : methods, template, handler };
}

function compile(template: string): Segment[] {
  return template
    .split('/')
    .slice(1)
    .map((s) => {
      const m = /^:(\w+)(?:\(([^)]+)\))?$/.exec(s);
      if (!m) return { literal: s };
      return { param: m[1]!, oneOf: m[2]?.split('|') };
    });
}

export class Router {
  private readonly routes: CompiledRoute[];

  constructor(routes: Route[]) {
    this.routes = routes.map((r) => ({ ...r, segments: compile(r.template) }));
  }

  /** The route for the method and path with its parameters, or undefined (a wrong method is a miss). */
  match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    if (!path.startsWith('/')) return undefined;
    const parts = path.split('/').slice(1);
    for (const r of this.routes) {
      if (!r.methods.includes(method)) continue;
      const params = matchSegments(r.segments, parts);
      if (params) return { route: r, params };
    }
    return undefined;
  }
}

function matchSegments(segments: Segment[], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, seg] of segments.entries()) {
    const part = parts[i]!;
    if ('literal' in seg) {
      if (part !== seg.literal) return undefined;
    } else {
      if (part === '' || (seg.oneOf && !seg.oneOf.includes(part))) return undefined;
      params[seg.param] = part;
    }
  }
  return params;
}
