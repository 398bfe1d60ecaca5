import { ZodError, z } from 'zod';
import { classifyError, isTransientStatus, PermanentError, TransientError } from '../../shared/errors';
import { EventInProgressError } from '../../shared/ledger/ledger';

const withCode = (code: string) => Object.assign(new Error(`connect ${code}`), { code });
const answer = (statusCode: number, message: string) => ({ message, statusCode, isResponse: true });

describe('classifyError: transient (redeliver) or permanent (acknowledge)', () => {
  it.each([
    ['connection refused', withCode('ECONNREFUSED')],
    ['connection reset', withCode('ECONNRESET')],
    ['unreachable host', withCode('EHOSTUNREACH')],
    ['DNS lookup retry', withCode('EAI_AGAIN')],
    ['a timeout', Object.assign(new Error('request timed out (300ms)'), { isTimeout: true })],
    ['Consul 500 without a leader', answer(500, 'No cluster leader')],
    ['Consul 503', answer(503, 'rpc error making call: EOF')],
    ['429 too many requests', answer(429, 'rate limit exceeded')],
    ['a concurrent delivery', new EventInProgressError('in progress')],
    ['something unknown', new Error('surprise')],
    ['a thrown string', 'surprise'],
  ])('%s is transient', (_what, err) => {
    const classified = classifyError(err);
    expect(classified).toBeInstanceOf(TransientError);
    expect(classified.transient).toBe(true);
  });

  it.each([
    ['ACL denied (403)', answer(403, 'Permission denied')],
    ['bad request (400)', answer(400, 'Bad request: invalid key')],
    ['not found (404)', answer(404, 'not found')],
    ['a 500 that is an ACL failure', answer(500, 'ACL not found')],
    [
      'a zod validation failure',
      (() => {
        try {
          z.object({ a: z.string() }).parse({});
        } catch (err) {
          return err as ZodError;
        }
        return undefined;
      })(),
    ],
    [
      'a client-side validation error',
      Object.assign(new Error('consul: kv.set: key required'), { isValidation: true }),
    ],
    ['a certificate the CA did not sign', withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE')],
    ['a certificate for another name', withCode('ERR_TLS_CERT_ALTNAME_INVALID')],
    ['a certificate failure that lost its code', new Error('Error: unable to verify the first certificate')],
  ])('%s is permanent', (_what, err) => {
    const classified = classifyError(err);
    expect(classified).toBeInstanceOf(PermanentError);
    expect(classified.transient).toBe(false);
  });

  it('keeps the status and the original error as cause', () => {
    const original = answer(403, 'Permission denied');
    const classified = classifyError(original);
    expect(classified.status).toBe(403);
    expect(classified.cause).toBe(original);
    expect(classified.message).toBe('Permission denied');
  });

  it('returns an already classified error as it is', () => {
    const permanent = new PermanentError('no', { status: 400 });
    const transient = new TransientError('later');
    expect(classifyError(permanent)).toBe(permanent);
    expect(classifyError(transient)).toBe(transient);
  });

  it('follows the cause of a wrapping error', () => {
    const wrapped = new Error('while deregistering', { cause: answer(403, 'Permission denied') });
    expect(classifyError(wrapped)).toMatchObject({ transient: false, status: 403 });
    const unreachable = new Error('while draining', { cause: withCode('ECONNREFUSED') });
    expect(classifyError(unreachable).transient).toBe(true);
  });

  it('honours an error that says itself whether it is transient', () => {
    expect(classifyError(Object.assign(new Error('x'), { transient: false })).transient).toBe(false);
    expect(classifyError(Object.assign(new Error('x'), { transient: true })).transient).toBe(true);
  });

  it('tells transient statuses apart', () => {
    expect(isTransientStatus(502)).toBe(true);
    expect(isTransientStatus(429)).toBe(true);
    expect(isTransientStatus(500, 'Permission denied')).toBe(false);
    expect(isTransientStatus(409)).toBe(false);
    expect(isTransientStatus(404)).toBe(false);
  });
});
