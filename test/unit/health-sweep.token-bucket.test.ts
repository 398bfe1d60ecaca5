import fc from 'fast-check';
import { refill, take, type BucketState } from '../../shared/health-sweep/token-bucket';

const s = { ratePerMinute: 6, burst: 3 };

describe('token bucket', () => {
  it('starts full and empties one token per take', () => {
    let state: BucketState | null = null;
    const taken: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const r = take(state, 1000, s);
      taken.push(r.taken);
      state = r.state;
    }
    expect(taken).toEqual([true, true, true, false, false]);
    expect(state).toEqual({ tokens: 0, at: 1000 });
  });

  it('refills at the rate, up to the burst', () => {
    expect(refill({ tokens: 0, at: 0 }, 10_000, s)).toEqual({ tokens: 1, at: 10_000 });
    expect(refill({ tokens: 0, at: 0 }, 3_600_000, s)).toEqual({ tokens: 3, at: 3_600_000 });
  });

  it('clamps a stored state it cannot trust', () => {
    expect(refill({ tokens: 1e9, at: 0 }, 0, s).tokens).toBe(3);
    expect(refill({ tokens: -5, at: 0 }, 0, s).tokens).toBe(0);
    expect(refill({ tokens: Number.NaN, at: 0 }, 7, s)).toEqual({ tokens: 3, at: 7 });
    // A clock a little behind the stored time does not count that time twice.
    expect(refill({ tokens: 1, at: 20_000 }, 10_000, s)).toEqual({ tokens: 1, at: 20_000 });
    // A time far in the future grants nothing, and the bucket refills from now on.
    const skewed = refill({ tokens: 0, at: 1e15 }, 1000, s);
    expect(skewed).toEqual({ tokens: 0, at: 1000 });
    expect(refill(skewed, 11_000, s).tokens).toBe(1);
  });

  it('never grants more than burst + rate × elapsed over any sequence of takes', () => {
    fc.assert(
      fc.property(
        fc.record({
          ratePerMinute: fc.double({ min: 0.01, max: 600, noNaN: true }),
          burst: fc.integer({ min: 1, max: 50 }),
        }),
        fc.array(fc.record({ dt: fc.integer({ min: -5_000, max: 120_000 }), attempts: fc.nat(20) }), {
          maxLength: 30,
        }),
        (settings, steps) => {
          let state: BucketState | null = null;
          let now = 1_000_000;
          // The bucket starts full at its first take, which may come after a step back.
          let start: number | undefined;
          let latest = now;
          let granted = 0;
          for (const { dt, attempts } of steps) {
            // Clocks may step back a little; time only counts forward.
            now += dt;
            latest = Math.max(latest, now);
            for (let i = 0; i < attempts; i++) {
              start ??= now;
              const r = take(state, now, settings);
              state = r.state;
              if (r.taken) granted++;
            }
          }
          const allowance = settings.burst + (settings.ratePerMinute * (latest - (start ?? latest))) / 60_000;
          return granted <= Math.floor(allowance + 1e-9);
        },
      ),
    );
  });
});
