import { randomBytes } from 'node:crypto';

/** Where the model gets fresh identifiers; tests inject a deterministic one. */
export interface IdSource {
  /** A numeric resource id as GCE prints it (uint64 as a decimal string). */
  numericId(): string;
  /** Random lowercase letters and digits, e.g. the suffix of a MIG instance name. */
  suffix(length: number): string;
  hex(length: number): string;
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

export const randomIds: IdSource = {
  numericId() {
    // 19 digits starting 1-8, within uint64 and the width real ids have.
    const first = 1 + (randomBytes(1)[0]! % 8);
    let rest = '';
    for (const b of randomBytes(18)) rest += String(b % 10);
    return `${first}${rest}`;
  },
  suffix(length) {
    let out = '';
    for (const b of randomBytes(length)) out += alphabet[b % alphabet.length];
    return out;
  },
  hex(length) {
    return randomBytes(Math.ceil(length / 2))
      .toString('hex')
      .slice(0, length);
  },
};
