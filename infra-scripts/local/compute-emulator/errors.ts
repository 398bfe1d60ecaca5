/** Errors in the shape Google APIs return: `{error: {code, message, errors: [{message, domain, reason}]}}`. */
export type ErrorReason =
  | 'notFound'
  | 'alreadyExists'
  | 'conditionNotMet'
  | 'invalid'
  | 'required'
  | 'badRequest'
  | 'resourceNotReady'
  | 'unsupported'
  | 'resourceInUseByAnotherResource';

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: ErrorReason,
    message: string,
  ) {
    super(message);
  }

  toJSON(): {
    error: { code: number; message: string; errors: { message: string; domain: string; reason: string }[] };
  } {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [{ message: this.message, domain: 'global', reason: this.reason }],
      },
    };
  }
}

export const notFound = (path: string): ApiError =>
  new ApiError(404, 'notFound', `The resource '${path}' was not found`);

export const alreadyExists = (path: string): ApiError =>
  new ApiError(409, 'alreadyExists', `The resource '${path}' already exists`);

export const fingerprintMismatch = (): ApiError =>
  new ApiError(412, 'conditionNotMet', 'Supplied fingerprint does not match current metadata fingerprint.');

/**
 * Whether a supplied fingerprint is the current one. A fingerprint is a bytes field, and Compute's
 * JSON mapping accepts standard or URL-safe base64 (https://protobuf.dev/programming-guides/json/,
 * "bytes"); gcloud's apitools re-encodes what it read URL-safe, so `+`/`/` come back as `-`/`_`.
 * Node's base64 decoder takes both alphabets: the bytes are compared.
 */
export const sameFingerprint = (supplied: string, current: string): boolean =>
  Buffer.from(supplied, 'base64').equals(Buffer.from(current, 'base64'));

export const invalid = (message: string): ApiError => new ApiError(400, 'invalid', message);

export const notReady = (path: string): ApiError =>
  new ApiError(400, 'resourceNotReady', `The resource '${path}' is not ready`);
