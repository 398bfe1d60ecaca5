/**
 * Stand-in for the GCE metadata server (`/computeMetadata/v1/...`), one listener per instance
 * address, so each local "instance" reads only its own metadata through GCE_METADATA_HOST.
 *
 *   const md = createMetadataServer({ port: 9169 });
 *   const host = await md.addInstance({ id: '123', name: 'backend-a', zone: 'us-central1-a', ip: '127.9.3.5',
 *     projectId: 'demo', projectNumber: '4242', machineType: 'e2-small', tags: ['backend'],
 *     attributes: { 'created-by': 'projects/4242/zones/us-central1-a/instanceGroupManagers/backend-a-mig' } });
 *   // run the instance with GCE_METADATA_HOST=host ('127.9.3.5:9169')
 *   md.setAttributes('127.9.3.5', { foo: 'bar' }); await md.removeInstance('127.9.3.5'); await md.stop();
 *
 * Served like the real one: `Metadata-Flavor: Google` required on requests (else 403) and sent on
 * responses; kebab-case paths (`machine-type`, `network-interfaces/0/ip`, `project/project-id`),
 * camelCase keys in `?recursive=true` JSON, `?alt=text|json`, directory listings for paths ending in `/`.
 * `instance/service-accounts/default/identity?audience=…&format=full` answers an identity token
 * (metadata-identity.ts) signed by the server's key; `identityJwksUrl()` serves that key's JWKS.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { createIdentitySigner, type IdentitySigner, type IdentitySubject } from './metadata-identity';

export const instanceMetadataSchema = z.object({
  id: z.string().regex(/^\d+$/),
  name: z.string().min(1),
  hostname: z.string().optional(),
  /** Short zone, e.g. `us-central1-a`. */
  zone: z.string().min(1),
  ip: z.ipv4(),
  projectId: z.string().min(1),
  projectNumber: z.string().regex(/^\d+$/),
  machineType: z.string().default('e2-small'),
  tags: z.array(z.string()).default([]),
  attributes: z.record(z.string(), z.string()).default({}),
  /** Seconds since the epoch (the identity token's instance_creation_timestamp); default: when added. */
  createdAt: z.number().int().positive().optional(),
});

export type InstanceMetadata = z.input<typeof instanceMetadataSchema>;

export interface MetadataServer {
  /** Listens on `ip:port` for this instance; resolves to the value for GCE_METADATA_HOST. */
  addInstance(metadata: InstanceMetadata): Promise<string>;
  /** Merges attributes (a value of `null` deletes the key). */
  setAttributes(ip: string, attributes: Record<string, string | null>): void;
  removeInstance(ip: string): Promise<void>;
  /** Where the JWKS of the identity tokens' key is served (Consul's jwt auth method reads it). */
  identityJwksUrl(): Promise<string>;
  /** The key that signs the instances' identity tokens (tests use it to sign tokens of their own). */
  readonly signer: IdentitySigner;
  stop(): Promise<void>;
}

type Tree = string | string[] | Tree[] | { [key: string]: Tree };

/** Pure: the metadata tree of one instance, with the real server's kebab-case path names. */
export function metadataTree(input: InstanceMetadata): { [key: string]: Tree } {
  const m = instanceMetadataSchema.parse(input);
  const zonePath = `projects/${m.projectNumber}/zones/${m.zone}`;
  return {
    instance: {
      id: m.id,
      name: m.name,
      hostname: m.hostname ?? `${m.name}.${m.zone}.c.${m.projectId}.internal`,
      zone: zonePath,
      'machine-type': `projects/${m.projectNumber}/machineTypes/${m.machineType}`,
      tags: m.tags,
      attributes: { ...m.attributes },
      'network-interfaces': [{ ip: m.ip, network: `projects/${m.projectNumber}/networks/default` }],
    },
    project: { 'project-id': m.projectId, 'numeric-project-id': m.projectNumber, attributes: {} },
  };
}

const camel = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

const rawNumber = '\u0000raw:';

/** JSON with camelCase keys (attribute names are user data, kept as is); `id` is a bare number as on GCE. */
function toJson(node: Tree, underAttributes = false): unknown {
  if (typeof node === 'string') return node;
  if (Array.isArray(node)) return node.map((n) => toJson(n));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (!underAttributes && key === 'id' && typeof value === 'string') out[key] = `${rawNumber}${value}`;
    else out[underAttributes ? key : camel(key)] = toJson(value, key === 'attributes' && !underAttributes);
  }
  return out;
}

// Instance ids exceed 2^53, so clients must not rely on the JSON number (they read instance/id).
const stringify = (value: unknown): string => JSON.stringify(value).replace(/"\\u0000raw:(\d+)"/g, '$1');

function flatten(node: Tree, prefix: string, lines: string[]): void {
  if (typeof node === 'string') lines.push(`${prefix} ${node}`);
  else if (Array.isArray(node) && node.every((n) => typeof n === 'string'))
    lines.push(`${prefix} ${JSON.stringify(node)}`);
  else for (const [k, v] of Object.entries(node)) flatten(v as Tree, prefix ? `${prefix}/${k}` : k, lines);
}

export interface MetadataAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Pure: answers one request path + query against an instance's tree. */
export function answer(tree: Tree, pathname: string, query: URLSearchParams): MetadataAnswer {
  const prefix = '/computeMetadata/v1';
  if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) return notFound();
  const parts = pathname.slice(prefix.length).split('/').filter(Boolean);
  const isDir = pathname.endsWith('/') || parts.length === 0;
  let node: Tree | undefined = tree;
  for (const part of parts) {
    if (typeof node === 'string' || node === undefined) return notFound();
    node = Array.isArray(node) ? node[Number(part)] : node[part];
  }
  if (node === undefined) return notFound();
  const recursive = query.get('recursive') === 'true';
  const alt =
    query.get('alt') ??
    (recursive || (Array.isArray(node) && node.every((n) => typeof n === 'string')) ? 'json' : 'text');
  if (typeof node === 'string') {
    return alt === 'json' ? json(JSON.stringify(node)) : text(node);
  }
  const stringList = Array.isArray(node) && node.every((n) => typeof n === 'string');
  if (recursive || stringList) {
    if (alt === 'text') {
      const lines: string[] = [];
      flatten(node, '', lines);
      return text(lines.join('\n') + '\n');
    }
    return json(stringify(toJson(node, parts[parts.length - 1] === 'attributes')));
  }
  if (!isDir) return { status: 301, contentType: 'text/html', body: `${pathname}/` };
  const entries = Array.isArray(node)
    ? node.map((child, i) => (typeof child === 'string' ? `${i}` : `${i}/`))
    : Object.entries(node).map(([k, v]) => (typeof v === 'string' ? k : `${k}/`));
  return alt === 'json' ? json(JSON.stringify(entries)) : text(entries.join('\n') + '\n');
}

const text = (body: string): MetadataAnswer => ({ status: 200, contentType: 'application/text', body });
const json = (body: string): MetadataAnswer => ({ status: 200, contentType: 'application/json', body });
const notFound = (): MetadataAnswer => ({ status: 404, contentType: 'text/html', body: 'Not Found\n' });

const identityPath = '/computeMetadata/v1/instance/service-accounts/default/identity';

/** `port` 0 picks a free port per instance (the returned host says which). */
export function createMetadataServer(options: { port?: number } = {}): MetadataServer {
  const port = options.port ?? 9169;
  const signer = createIdentitySigner();
  const instances = new Map<
    string,
    { tree: { [key: string]: Tree }; server: Server; subject: IdentitySubject }
  >();

  const handle = (ip: string, req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Metadata-Flavor', 'Google');
    res.setHeader('Server', 'Metadata Server for VM');
    const entry = instances.get(ip);
    if (req.headers['metadata-flavor'] !== 'Google') {
      res.writeHead(403, { 'Content-Type': 'text/html' }).end('Missing Metadata-Flavor:Google header.\n');
      return;
    }
    if (!entry || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(entry ? 405 : 404).end();
      return;
    }
    const url = new URL(req.url ?? '/', `http://${ip}`);
    if (url.pathname === identityPath) {
      // As GCE: no audience is a 400; the token is this listener's instance's, never another's.
      const audience = url.searchParams.get('audience');
      if (!audience) {
        res.writeHead(400, { 'Content-Type': 'text/html' }).end('non-empty audience parameter required\n');
        return;
      }
      const token = signer.token(entry.subject, url.searchParams);
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(token);
      return;
    }
    const result = answer(entry.tree, url.pathname, url.searchParams);
    if (result.status === 301) {
      res.writeHead(301, { Location: result.body }).end();
      return;
    }
    res.writeHead(result.status, { 'Content-Type': result.contentType }).end(result.body);
  };

  return {
    async addInstance(metadata) {
      const parsed = instanceMetadataSchema.parse(metadata);
      if (instances.has(parsed.ip)) throw new Error(`metadata: ${parsed.ip} already has an instance`);
      const server = createServer((req, res) => handle(parsed.ip, req, res));
      const bound = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, parsed.ip, () => {
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
      const subject = { ...parsed, createdAt: parsed.createdAt ?? Math.floor(Date.now() / 1000) };
      instances.set(parsed.ip, { tree: metadataTree(parsed), server, subject });
      return `${parsed.ip}:${bound}`;
    },
    setAttributes(ip, attributes) {
      const entry = instances.get(ip);
      if (!entry) throw new Error(`metadata: no instance at ${ip}`);
      const instance = entry.tree.instance as { attributes: Record<string, string> };
      for (const [key, value] of Object.entries(attributes)) {
        if (value === null) delete instance.attributes[key];
        else instance.attributes[key] = value;
      }
    },
    async removeInstance(ip) {
      const entry = instances.get(ip);
      if (!entry) return;
      instances.delete(ip);
      entry.server.closeAllConnections();
      await new Promise<void>((resolve) => entry.server.close(() => resolve()));
    },
    identityJwksUrl: () => signer.serveJwks(),
    signer,
    async stop() {
      await Promise.all([...instances.keys()].map((ip) => this.removeInstance(ip)));
      await signer.stop();
    },
  };
}
