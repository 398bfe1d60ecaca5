/**
 * One HTTP listener for every stand-in API module, with a journal of the requests gcloud sent.
 * `gcloudEnvironment` gives the environment that points the real gcloud at it: its own config
 * folder, no credentials, and one endpoint override per module (plus any extra, e.g. compute).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { ApiModule, ApiResponse } from './contract';

export interface JournalEntry {
  api: string;
  method: string;
  path: string;
  status: number;
  /** No module served it. */
  unserved: boolean;
}

export interface StandIn {
  url: string;
  journal: JournalEntry[];
  /** The module's mount URL, ending in `/`, as gcloud wants an override. */
  endpoint(name: string): string;
  stop(): Promise<void>;
}

const MAX_BODY = 64 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export async function startStandIn(modules: ApiModule[]): Promise<StandIn> {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const journal: JournalEntry[] = [];
  let url = '';
  const server: Server = createServer((req, res) => {
    void (async () => {
      const target = new URL(req.url ?? '/', 'http://stand-in');
      const [, name = '', ...rest] = target.pathname.split('/');
      const module = byName.get(name);
      const raw = await readBody(req);
      const path = `/${rest.join('/')}`;
      let answer: ApiResponse | undefined;
      try {
        answer = module
          ? await module.handle({
              method: req.method ?? 'GET',
              path,
              query: target.searchParams,
              body: parseJson(raw),
              raw,
              base: `${url}/${name}`,
            })
          : undefined;
      } catch (err) {
        answer = { status: 500, body: { error: { code: 500, message: String(err), status: 'INTERNAL' } } };
      }
      const reply = answer ?? {
        status: 404,
        body: {
          error: {
            code: 404,
            message: `stand-in serves no ${req.method} ${target.pathname}`,
            status: 'NOT_FOUND',
          },
        },
      };
      journal.push({
        api: name,
        method: req.method ?? 'GET',
        path,
        status: reply.status,
        unserved: answer === undefined,
      });
      const body = reply.body === undefined ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': 'application/json; charset=UTF-8', ...reply.headers });
      res.end(body);
    })().catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  // gcloud reuses idle connections for long (zipping a function's source can take seconds); a short
  // keep-alive closes them under it and its POST fails with RemoteDisconnected.
  server.keepAliveTimeout = 600_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    journal,
    endpoint: (name) => `${url}/${name}/`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Environment for the real gcloud: a private config folder, credentials off, every API overridden.
 * Properties set through CLOUDSDK_<SECTION>_<PROPERTY> variables, as gcloud documents for any property.
 */
export function gcloudEnvironment(
  configDir: string,
  project: string,
  endpoints: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {
    CLOUDSDK_CONFIG: configDir,
    CLOUDSDK_CORE_PROJECT: project,
    CLOUDSDK_AUTH_DISABLE_CREDENTIALS: 'true',
    CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    CLOUDSDK_CORE_DISABLE_FILE_LOGGING: 'true',
  };
  for (const [name, endpoint] of Object.entries(endpoints)) {
    env[`CLOUDSDK_API_ENDPOINT_OVERRIDES_${name.toUpperCase()}`] = endpoint;
  }
  return env;
}
