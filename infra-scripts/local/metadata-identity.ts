/**
 * The metadata server's instance identity tokens, in the format of Google's
 * (https://cloud.google.com/compute/docs/instances/verifying-instance-identity): an RS256 JWT with
 * iss `https://accounts.google.com`, aud the audience asked, azp/sub the service account's unique id,
 * a one-hour lifetime, and with `format=full` the claim `google.compute_engine` (project_id,
 * project_number, zone, instance_id, instance_name, instance_creation_timestamp; license_id only
 * with `licenses=TRUE`, and the sandbox's images have no licenses). Signed by a key of the sandbox
 * whose JWKS (`keys` with `kid`) stands in for https://www.googleapis.com/oauth2/v3/certs.
 */
import { createPrivateKey, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { z } from 'zod';

export const googleIssuer = 'https://accounts.google.com';
const lifetimeSeconds = 3600;

export interface IdentitySubject {
  id: string;
  name: string;
  /** Short zone. */
  zone: string;
  projectId: string;
  projectNumber: string;
  /** Seconds since the epoch, when the instance was created. */
  createdAt: number;
}

export interface IdentitySigner {
  readonly kid: string;
  /** `{ keys: [...] }` as Google publishes its certificates. */
  jwks(): { keys: Record<string, unknown>[] };
  token(subject: IdentitySubject, query: URLSearchParams, nowSeconds?: number): string;
  /** Serves the JWKS on `127.0.0.1:<free port>`; resolves to its URL (for Consul's JWKSURL). */
  serveJwks(): Promise<string>;
  stop(): Promise<void>;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** The service account's unique id: 21 digits, stable per project (Compute's default account). */
export const serviceAccountId = (projectNumber: string): string => `1${projectNumber.padStart(20, '0')}`;

/** Pure: the claims of one token. */
export function identityClaims(
  subject: IdentitySubject,
  query: URLSearchParams,
  nowSeconds: number,
): Record<string, unknown> {
  const account = serviceAccountId(subject.projectNumber);
  const claims: Record<string, unknown> = {
    aud: query.get('audience') ?? '',
    azp: account,
    exp: nowSeconds + lifetimeSeconds,
    iat: nowSeconds,
    iss: googleIssuer,
    sub: account,
  };
  if (query.get('format') === 'full') {
    claims.google = {
      compute_engine: {
        instance_creation_timestamp: subject.createdAt,
        instance_id: subject.id,
        instance_name: subject.name,
        project_id: subject.projectId,
        project_number: Number(subject.projectNumber),
        zone: subject.zone,
        ...(query.get('licenses')?.toUpperCase() === 'TRUE' ? { license_id: [] } : {}),
      },
    };
  }
  return claims;
}

/** Signs any claims with a key (tests forge tokens of other projects or audiences with it). */
export function signJwt(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ alg: 'RS256', kid, typ: 'JWT' }));
  const body = `${header}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${b64url(createSign('RSA-SHA256').update(body).sign(key))}`;
}

export function createIdentitySigner(options: { privateKeyPem?: string } = {}): IdentitySigner {
  const privateKey = options.privateKeyPem
    ? createPrivateKey(options.privateKeyPem)
    : generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const kid = randomBytes(20).toString('hex');
  const publicJwk = z
    .object({ kty: z.literal('RSA'), n: z.string(), e: z.string() })
    .parse(privateKey.export({ format: 'jwk' }));
  let server: Server | undefined;
  let url: Promise<string> | undefined;

  const signer: IdentitySigner = {
    kid,
    jwks: () => ({ keys: [{ kty: 'RSA', alg: 'RS256', use: 'sig', kid, n: publicJwk.n, e: publicJwk.e }] }),
    token: (subject, query, nowSeconds = Math.floor(Date.now() / 1000)) =>
      signJwt(privateKey, kid, identityClaims(subject, query, nowSeconds)),
    serveJwks() {
      url ??= new Promise<string>((resolve, reject) => {
        server = createServer((_req, res) => {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(signer.jwks()));
        });
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const address = server!.address();
          resolve(
            `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/oauth2/v3/certs`,
          );
        });
      });
      return url;
    },
    async stop() {
      const s = server;
      server = undefined;
      url = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  return signer;
}
