import fc from 'fast-check';
import { page } from '../../infra-scripts/local/compute-emulator/views';

test('paging by maxResults returns every item exactly once, in name order, for any size', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { maxLength: 60 }),
      fc.integer({ min: 1, max: 20 }),
      (names, max) => {
        const seen: string[] = [];
        let token: string | undefined;
        for (let pages = 0; pages <= names.length + 1; pages++) {
          const r = page(names, (n) => n, max, token);
          expect(r.items.length).toBeLessThanOrEqual(max);
          seen.push(...r.items);
          token = r.nextPageToken;
          if (!token) break;
        }
        expect(token).toBeUndefined();
        expect(seen).toEqual([...names].sort((a, b) => a.localeCompare(b)));
      },
    ),
  );
});

test('a page token stays valid when items before or after it change', () => {
  const first = page(['a', 'b', 'c', 'd'], (n) => n, 2, undefined);
  expect(first.items).toEqual(['a', 'b']);
  const next = page(['b', 'c', 'd', 'e'], (n) => n, 2, first.nextPageToken);
  expect(next.items).toEqual(['c', 'd']);
});

test('a token the emulator did not issue is refused', () => {
  expect(() => page(['a'], (n) => n, 1, 'bm9wZQ')).toThrow(/pageToken/);
});
