import { z } from 'zod';
import { parse, resourceName as name } from './compute-schemas';
import { alreadyExists, ApiError, notFound } from './errors';
import { apiBase, lastSegment, regionOfZone } from './state';

/**
 * The deploy's own Compute resources that no controller acts on: networks, subnetworks, routers (their
 * Cloud NAT is a field of the router, as Compute models it), firewalls, addresses, health checks and
 * the images Packer built. Each is a stored resource with Google's output fields; links between them
 * are checked on insert and on delete (a resource in use is refused as Compute refuses it).
 */
export type Collection =
  'networks' | 'subnetworks' | 'routers' | 'firewalls' | 'addresses' | 'healthChecks' | 'images';

export const globalCollections = ['networks', 'firewalls', 'healthChecks', 'images'] as const;
export const regionalCollections = ['subnetworks', 'routers', 'addresses'] as const;

const kinds: Record<Collection, string> = {
  networks: 'compute#network',
  subnetworks: 'compute#subnetwork',
  routers: 'compute#router',
  firewalls: 'compute#firewall',
  addresses: 'compute#address',
  healthChecks: 'compute#healthCheck',
  images: 'compute#image',
};

const link = z.string().min(1);
// Only the fields the emulator checks or links are named; the rest of a body is kept as sent.
const bodies: Record<Exclude<Collection, 'images'>, z.ZodType<{ name: string } & Record<string, unknown>>> = {
  networks: z.object({ name, autoCreateSubnetworks: z.boolean().optional() }).passthrough(),
  subnetworks: z.object({ name, network: link, ipCidrRange: z.string().min(1) }).passthrough(),
  routers: z
    .object({ name, network: link, nats: z.array(z.object({ name }).passthrough()).optional() })
    .passthrough(),
  firewalls: z.object({ name, network: link.optional() }).passthrough(),
  addresses: z.object({ name, address: z.string().optional(), subnetwork: link.optional() }).passthrough(),
  healthChecks: z.object({ name, type: z.string().optional() }).passthrough(),
};

interface Stored {
  collection: Collection;
  /** `global` or a region. */
  where: string;
  body: Record<string, unknown>;
}

export class NetworkResources {
  private readonly items = new Map<string, Stored>();
  private nextExternal = 1;

  constructor(
    private readonly project: string,
    private readonly ids: { numericId(): string },
    private readonly iso: () => string,
  ) {}

  private path(collection: Collection, where: string, n: string): string {
    const scope = where === 'global' ? 'global' : `regions/${where}`;
    return `projects/${this.project}/${scope}/${collection}/${n}`;
  }

  selfLink(collection: Collection, where: string, n: string): string {
    return `${apiBase}/${this.path(collection, where, n)}`;
  }

  /** A link as a client sends it (name, partial path or URL) to the stored resource, or a 404. */
  private resolve(collection: Collection, where: string, ref: string): Stored {
    const key = this.path(collection, where, lastSegment(ref));
    const found = this.items.get(key);
    if (!found) throw notFound(key);
    return found;
  }

  seedImage(n: string, family: string): void {
    const key = this.path('images', 'global', n);
    this.items.set(key, {
      collection: 'images',
      where: 'global',
      body: this.withOutput('images', 'global', { name: n, family, status: 'READY' }),
    });
  }

  private withOutput(collection: Collection, where: string, body: Record<string, unknown>) {
    return {
      ...body,
      kind: kinds[collection],
      id: this.ids.numericId(),
      creationTimestamp: this.iso(),
      selfLink: this.selfLink(collection, where, body.name as string),
      ...(where === 'global' ? {} : { region: `${apiBase}/projects/${this.project}/regions/${where}` }),
    };
  }

  insert(collection: Exclude<Collection, 'images'>, where: string, input: unknown): string {
    const body = parse(bodies[collection], input, 'resource');
    const key = this.path(collection, where, body.name);
    if (this.items.has(key)) throw alreadyExists(key);
    const extra: Record<string, unknown> = {};
    if ('network' in body && typeof body.network === 'string') {
      extra.network = this.resolve('networks', 'global', body.network).body.selfLink;
    }
    if (collection === 'subnetworks') {
      extra.gatewayAddress = String(body.ipCidrRange).replace(/\.\d+\/\d+$/, '.1');
    }
    if (collection === 'networks') extra.routingConfig = { routingMode: 'REGIONAL' };
    if (collection === 'addresses') Object.assign(extra, this.addressFields(where, body));
    if (collection === 'firewalls' && body.network === undefined) {
      extra.network = this.resolve('networks', 'global', 'default').body.selfLink;
    }
    this.items.set(key, {
      collection,
      where,
      body: this.withOutput(collection, where, { ...body, ...extra }),
    });
    return this.selfLink(collection, where, body.name);
  }

  // An internal address lies in its subnetwork; an external one gets a documentation-range address.
  private addressFields(where: string, body: Record<string, unknown>): Record<string, unknown> {
    const subnet =
      typeof body.subnetwork === 'string' ? this.resolve('subnetworks', where, body.subnetwork) : undefined;
    const address =
      typeof body.address === 'string'
        ? body.address
        : subnet
          ? undefined
          : `203.0.113.${this.nextExternal++}`;
    if (address === undefined) throw new ApiError(400, 'required', "Required field 'address' not specified");
    return {
      address,
      addressType: subnet ? 'INTERNAL' : 'EXTERNAL',
      status: 'RESERVED',
      ...(subnet ? { subnetwork: subnet.body.selfLink } : { networkTier: 'PREMIUM' }),
    };
  }

  get(collection: Collection, where: string, n: string): Record<string, unknown> {
    return this.resolve(collection, where, n).body;
  }

  list(collection: Collection, where: string): Record<string, unknown>[] {
    return [...this.items.values()]
      .filter((s) => s.collection === collection && s.where === where)
      .map((s) => s.body);
  }

  /** The newest READY image of a family (images.getFromFamily). */
  fromFamily(family: string): Record<string, unknown> {
    const found = this.list('images', 'global').filter((i) => i.family === family);
    const newest = found.at(-1);
    if (!newest) throw notFound(`projects/${this.project}/global/images/family/${family}`);
    return newest;
  }

  /** routers.patch: a JSON merge of the fields sent (gcloud sends the whole `nats` list). */
  patch(collection: Collection, where: string, n: string, input: unknown): string {
    const stored = this.resolve(collection, where, n);
    const changes = parse(z.record(z.string(), z.unknown()), input, 'resource');
    for (const field of ['name', 'id', 'selfLink', 'kind', 'creationTimestamp']) delete changes[field];
    if (collection === 'routers' && changes.nats !== undefined) {
      parse(z.array(z.object({ name }).passthrough()), changes.nats, 'resource.nats');
    }
    stored.body = { ...stored.body, ...changes };
    return stored.body.selfLink as string;
  }

  delete(collection: Collection, where: string, n: string): string {
    const stored = this.resolve(collection, where, n);
    const self = stored.body.selfLink as string;
    const user = [...this.items.values()].find((s) => s !== stored && Object.values(s.body).includes(self))
      ?.body.selfLink;
    if (typeof user === 'string') {
      throw new ApiError(
        400,
        'resourceInUseByAnotherResource',
        `The ${collection.replace(/s$/, '')} resource '${this.path(collection, where, n)}' is already being used by '${user.replace(`${apiBase}/`, '')}'`,
      );
    }
    this.items.delete(this.path(collection, where, n));
    return self;
  }

  /** Everything held, for the rehearsal's "teardown leaves nothing". */
  inventory(): { kind: string; name: string }[] {
    return [...this.items.values()]
      .filter((s) => s.collection !== 'images')
      .map((s) => ({
        kind: `compute.${s.collection}`,
        name: this.path(s.collection, s.where, s.body.name as string),
      }));
  }

  /** Whether a region is one the emulator serves. */
  static regionOf(zones: string[], region: string): boolean {
    return zones.some((z) => regionOfZone(z) === region);
  }
}
