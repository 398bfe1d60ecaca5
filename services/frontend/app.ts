import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';

import { haproxyDnsName, services } from '../../shared/contract';
import type { Logger } from '../../shared/logging';
import { requestUrl, sendJson } from '../lib/graceful-server';

/** The service the frontend reaches the backend tier through (ARCHITECTURE §1). */
export const haproxyService = haproxyDnsName;
export const haproxyPort = services.haproxy.port;

/** Names to try, zone-local first. */
export function haproxyNames(zone: string | undefined): string[] {
  return zone ? [`${zone}.${haproxyService}`, haproxyService] : [haproxyService];
}

const backendBodySchema = z.object({
  instance: z.object({
    id: z.string(),
    name: z.string(),
    zone: z.string(),
    internalIp: z.string(),
    machineType: z.string().optional(),
  }),
  consul: z.object({ node: z.string(), datacenter: z.string() }).nullable().optional(),
});

export type BackendAnswer = z.infer<typeof backendBodySchema>;

export interface UpstreamResponse {
  status: number;
  body: string;
  haproxyNode: string | undefined;
  haproxyServer: string | undefined;
}

export type UpstreamMethod = 'GET' | 'POST';

export interface FrontendDeps {
  zone: () => Promise<string | undefined>;
  /** Resolves a name to IPv4 addresses; an empty list or a rejection means "not found". */
  resolve: (name: string) => Promise<string[]>;
  fetchUpstream: (address: string, port: number, method: UpstreamMethod) => Promise<UpstreamResponse>;
  now: () => number;
  logger: Logger;
}

export type Outcome =
  | {
      ok: true;
      backend: BackendAnswer['instance'];
      consulNode: string | undefined;
      haproxy: { name: string; address: string; node: string | undefined; server: string | undefined };
      latencyMs: number;
    }
  | { ok: false; reason: string; tried: string[]; latencyMs: number };

/**
 * Resolves the HAProxy tier and fetches one backend answer through it; never throws. A POST moves on
 * to the next HAProxy only when the connection was refused: once sent, it may have changed something.
 */
export async function fetchThroughHaproxy(
  deps: FrontendDeps,
  method: UpstreamMethod = 'GET',
): Promise<Outcome> {
  const started = deps.now();
  const tried: string[] = [];
  const zone = await deps.zone().catch(() => undefined);
  let reason = 'no HAProxy found in Consul DNS';
  const failed = (why: string): Outcome => ({
    ok: false,
    reason: why,
    tried,
    latencyMs: deps.now() - started,
  });
  for (const name of haproxyNames(zone)) {
    const addresses = await deps.resolve(name).catch(() => []);
    for (const address of shuffle(addresses)) {
      tried.push(`${name} -> ${address}`);
      try {
        const upstream = await deps.fetchUpstream(address, haproxyPort, method);
        if (upstream.status !== 200) {
          reason = `HAProxy ${address} answered HTTP ${upstream.status}`;
          if (method === 'POST') return failed(reason);
          continue;
        }
        const body = backendBodySchema.parse(JSON.parse(upstream.body));
        return {
          ok: true,
          backend: body.instance,
          consulNode: body.consul?.node,
          haproxy: { name, address, node: upstream.haproxyNode, server: upstream.haproxyServer },
          latencyMs: deps.now() - started,
        };
      } catch (err) {
        reason = `HAProxy ${address}: ${err instanceof Error ? err.message : String(err)}`;
        if (method === 'POST' && (err as NodeJS.ErrnoException).code !== 'ECONNREFUSED')
          return failed(reason);
      }
    }
  }
  return failed(reason);
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]!);

/**
 * What the public page shows of an outcome: which backend and HAProxy served (names and zone, so the
 * rotation is visible), never an instance id, an internal address or what was tried. Those are what
 * a forger of audit entries or Consul registrations needs; the log keeps them.
 */
export type PublicOutcome =
  | {
      ok: true;
      backend: { name: string; zone: string };
      haproxy: { name: string; node: string | undefined; server: string | undefined };
      latencyMs: number;
    }
  | { ok: false; reason: string; attempts: number; latencyMs: number };

export function publicView(outcome: Outcome): PublicOutcome {
  if (!outcome.ok)
    return {
      ok: false,
      reason: 'backend tier unreachable',
      attempts: outcome.tried.length,
      latencyMs: outcome.latencyMs,
    };
  const { name, zone } = outcome.backend;
  const { name: resolved, node, server } = outcome.haproxy;
  return {
    ok: true,
    backend: { name, zone },
    haproxy: { name: resolved, node, server },
    latencyMs: outcome.latencyMs,
  };
}

/** Pure: the page for one outcome. */
export function renderPage(outcome: Outcome): string {
  const view = publicView(outcome);
  const rows: [string, string][] = view.ok
    ? [
        ['Backend', view.backend.name],
        ['Backend zone', view.backend.zone],
        ['HAProxy', view.haproxy.node ?? 'unknown'],
        ['HAProxy server slot', view.haproxy.server ?? 'unknown'],
        ['Resolved as', view.haproxy.name],
        ['Latency', `${view.latencyMs} ms`],
      ]
    : [
        ['Problem', view.reason],
        ['HAProxy addresses tried', String(view.attempts)],
        ['Latency', `${view.latencyMs} ms`],
      ];
  const title = outcome.ok ? `Served by ${outcome.backend.name}` : 'Backend tier unreachable (502)';
  const table = rows
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:3rem auto;max-width:40rem;color:#222}
th{text-align:left;padding:.3rem 1rem .3rem 0;color:#555}td{font-family:monospace}
.bad{color:#b00020}</style></head>
<body><h1${outcome.ok ? '' : ' class="bad"'}>${escapeHtml(title)}</h1>
<table>
${table}
</table>
<p>Refresh to see the backends rotate.</p></body></html>
`;
}

export function createFrontendHandler(deps: FrontendDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
      res.writeHead(405, { Allow: 'GET, HEAD, POST' }).end();
      return;
    }
    // A POST's body is not forwarded: the backend only answers who served it.
    req.resume();
    const url = requestUrl(req, 'http://frontend');
    if (!url) {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid request target\n');
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return;
    }
    if (url.pathname !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    const outcome = await fetchThroughHaproxy(deps, req.method === 'POST' ? 'POST' : 'GET');
    if (!outcome.ok)
      deps.logger.warn({ reason: outcome.reason, tried: outcome.tried }, 'backend tier unreachable');
    const status = outcome.ok ? 200 : 502;
    if (url.searchParams.get('format') === 'json') {
      sendJson(res, status, publicView(outcome));
      return;
    }
    res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(renderPage(outcome));
  };
}
