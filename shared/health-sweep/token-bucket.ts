/**
 * A token bucket as plain data (state in, state out), so the sweep can keep it in Consul KV between
 * runs and the planner stays pure. Starts full, refills continuously at `ratePerMinute` up to
 * `burst`; an action needs one whole token.
 */

export interface BucketSettings {
  ratePerMinute: number;
  burst: number;
}

export interface BucketState {
  /** Tokens left, fractional between refills. */
  tokens: number;
  /** Time of `tokens`, in ms since the epoch. */
  at: number;
}

/** How far back a clock may step without the bucket forgetting the time it already counted. */
const MAX_SKEW_MS = 5 * 60_000;

/**
 * The state at `now`. The stored state comes from KV, so it is clamped: a bad token count never
 * grants more than `burst`. Time counted once is not counted again when a clock steps back a
 * little; a time far in the future (a broken clock or a tampered record) grants nothing and the
 * bucket refills from `now` on, rather than staying locked.
 */
export function refill(state: BucketState | null, now: number, s: BucketSettings): BucketState {
  if (!state || !Number.isFinite(state.tokens) || !Number.isFinite(state.at))
    return { tokens: s.burst, at: now };
  const tokens = Math.min(s.burst, Math.max(0, state.tokens));
  if (state.at > now) return { tokens, at: state.at - now <= MAX_SKEW_MS ? state.at : now };
  return { tokens: Math.min(s.burst, tokens + ((now - state.at) * s.ratePerMinute) / 60_000), at: now };
}

/** Takes one token at `now` if there is a whole one. */
export function take(
  state: BucketState | null,
  now: number,
  s: BucketSettings,
): { taken: boolean; state: BucketState } {
  const current = refill(state, now, s);
  if (current.tokens < 1) return { taken: false, state: current };
  return { taken: true, state: { tokens: current.tokens - 1, at: current.at } };
}
