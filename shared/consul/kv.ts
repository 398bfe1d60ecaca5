import { z } from 'zod';
import { PermanentError, TransientError } from '../errors';
import { indexOf, parse } from './answers';
import { isResponseError, type Connection, type PapiResponse, type PassThrough } from './package';
import { kvEntriesSchema, type KvEntry } from './schemas';
import type { ConsulClient, Indexed } from './types';

/** One key with the X-Consul-Index of the answer; also the blocking KV query's attempt. */
export async function kvGet(
  { consul, withHeaders }: Connection,
  key: string,
  pass: PassThrough & { index?: string; wait?: string },
): Promise<Indexed<KvEntry | null>> {
  const options = { key, ...pass, ctx: withHeaders() };
  const [res, entries] = (await consul.kv.get(options)) as [PapiResponse, unknown];
  // The package decodes Value from base64 already.
  const entry = entries === undefined ? undefined : parse(kvEntriesSchema.element, entries, 'kv');
  return {
    index: indexOf(res),
    value: entry ? { key: entry.Key, value: entry.Value ?? '', modifyIndex: entry.ModifyIndex } : null,
  };
}

export function kvApi(conn: Connection, txn: ConsulClient['txn']): ConsulClient['kv'] {
  const { consul, run } = conn;
  return {
    get: (key) => run(`kv get ${key}`, async (pass) => (await kvGet(conn, key, pass)).value),
    list: (prefix) =>
      run(`kv list ${prefix}`, async (pass) => {
        // The package decodes Value from base64 and answers undefined for a 404 (nothing under it).
        const entries: unknown = await consul.kv.get({ key: prefix, recurse: true, ...pass });
        return parse(kvEntriesSchema, entries ?? [], 'kv list').map((e) => ({
          key: e.Key,
          value: e.Value ?? '',
          modifyIndex: e.ModifyIndex,
        }));
      }),
    keys: (prefix, options = {}) =>
      run(`kv keys ${prefix}`, async (pass) => {
        try {
          const keys = await consul.kv.keys({ key: prefix, separator: options.separator, ...pass });
          return parse(z.array(z.string()), keys ?? [], 'kv keys');
        } catch (err) {
          if (isResponseError(err) && err.statusCode === 404) return [];
          throw err;
        }
      }),
    set: (key, value) =>
      run(`kv set ${key}`, async (pass) => {
        await consul.kv.set({ key, value, ...pass });
      }),
    // Through /v1/txn, which unlike /v1/kv answers with the new ModifyIndex.
    cas: async (key, value, index) => {
      const answer = await txn([
        { KV: { Verb: 'cas', Key: key, Value: Buffer.from(value).toString('base64'), Index: index } },
      ]);
      if (!answer.ok) {
        if (answer.errors.every((e) => /index is stale/i.test(e.What))) return null;
        throw new PermanentError(`kv cas ${key}: ${answer.errors.map((e) => e.What).join('; ')}`, {
          status: 409,
        });
      }
      const modifyIndex = answer.results[0]?.KV?.ModifyIndex;
      if (modifyIndex === undefined) throw new TransientError(`kv cas ${key}: answer without an index`);
      return modifyIndex;
    },
    delete: (key, options = {}) =>
      run(`kv delete ${key}`, async (pass) => {
        const answer = await consul.kv.del({
          key,
          ...(options.cas === undefined ? {} : { cas: options.cas }),
          ...pass,
        });
        return answer === true;
      }),
    deleteTree: (prefix) =>
      run(`kv delete-tree ${prefix}`, async (pass) => {
        await consul.kv.del({ key: prefix, recurse: true, ...pass });
      }),
    acquire: (key, value, session) =>
      run(
        `kv acquire ${key}`,
        async (pass) => (await consul.kv.set({ key, value, acquire: session, ...pass })) === true,
      ),
    release: (key, value, session) =>
      run(
        `kv release ${key}`,
        async (pass) => (await consul.kv.set({ key, value, release: session, ...pass })) === true,
      ),
  };
}
