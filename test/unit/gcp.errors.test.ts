import { PermanentError, TransientError } from '../../shared/errors';
import {
  classifyGoogleError,
  googleErrorInfo,
  isNotFound,
  RequestRefusedError,
  ResourceBusyError,
  wasRefused,
} from '../../shared/gcp/errors';
import { timeSeriesOf } from '../../shared/gcp/monitoring';

// The JSON body Compute answers with (https://cloud.google.com/compute/docs/reference/rest/v1#error).
const restError = (code: number, reason: string) =>
  Object.assign(
    new Error(JSON.stringify({ error: { code, message: 'x', errors: [{ reason, message: 'x' }] } })),
    {
      code,
    },
  );

describe('Google API errors onto shared/errors', () => {
  it('reads the status from a REST body, an HTTP code or a decoded gRPC code', () => {
    expect(googleErrorInfo(restError(404, 'notFound')).status).toBe(404);
    expect(googleErrorInfo(Object.assign(new Error('gone'), { code: 5 })).status).toBe(404);
    expect(googleErrorInfo(Object.assign(new Error('later'), { code: 14 })).status).toBe(503);
    expect(googleErrorInfo(Object.assign(new Error('slow'), { status: 429 })).status).toBe(429);
    expect(isNotFound(Object.assign(new Error('gone'), { code: 5 }))).toBe(true);
    expect(isNotFound(restError(403, 'forbidden'))).toBe(false);
  });

  it('maps resourceNotReady to a busy (transient, refused) error', () => {
    const e = classifyGoogleError(restError(400, 'resourceNotReady'), 'patch a');
    expect(e).toBeInstanceOf(ResourceBusyError);
    expect(e).toBeInstanceOf(TransientError);
    expect(wasRefused(e)).toBe(true);
    expect(e.message).toMatch(/^patch a: 400/);
  });

  it('maps 429 and 5xx to transient, other 4xx to a refused permanent error', () => {
    expect(classifyGoogleError(restError(429, 'rateLimitExceeded'), 'w').transient).toBe(true);
    expect(classifyGoogleError(restError(503, 'backendError'), 'w').transient).toBe(true);
    const refused = classifyGoogleError(restError(403, 'forbidden'), 'w');
    expect(refused).toBeInstanceOf(RequestRefusedError);
    expect(refused).toBeInstanceOf(PermanentError);
    expect(refused.status).toBe(403);
    expect(wasRefused(refused)).toBe(true);
  });

  it('leaves errors without a status to the shared classification', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(classifyGoogleError(refused, 'get').transient).toBe(true);
    expect(wasRefused(classifyGoogleError(refused, 'get'))).toBe(false);
    const already = new PermanentError('bad');
    expect(classifyGoogleError(already, 'get')).toBe(already);
  });
});

describe('timeSeriesOf', () => {
  it('writes one point per series, the later one winning', () => {
    const series = timeSeriesOf(
      'p',
      [
        { type: 't', labels: { a: '1', b: '2' }, value: 1 },
        { type: 't', labels: { b: '2', a: '1' }, value: 2 },
        { type: 't', labels: { a: '2' }, value: 3 },
      ],
      1_500,
    );
    expect(series).toHaveLength(2);
    expect(series[0]?.points[0]?.value.doubleValue).toBe(2);
    expect(series[0]?.points[0]?.interval.endTime).toEqual({ seconds: 1, nanos: 500_000_000 });
    expect(series[0]?.resource).toEqual({ type: 'global', labels: { project_id: 'p' } });
  });
});
