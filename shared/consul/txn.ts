import { parse } from './answers';
import { isResponseError, type Connection } from './package';
import { txnAnswerSchema } from './schemas';
import type { ConsulClient } from './types';

/** `/v1/txn`: a rolled-back transaction (409) is an answer with its errors, not a failure. */
export function txnApi({ consul, run }: Connection): ConsulClient['txn'] {
  return (ops) =>
    run('txn', async (pass) => {
      try {
        const answer = await consul.transaction.create(ops, { ...pass });
        const parsed = parse(txnAnswerSchema, answer, 'txn');
        return { ok: true, results: parsed.Results ?? [] };
      } catch (err) {
        if (isResponseError(err) && err.statusCode === 409) {
          const parsed = parse(txnAnswerSchema, err.response.body, 'txn');
          return { ok: false, errors: parsed.Errors ?? [] };
        }
        throw err;
      }
    });
}
