import { align, normalizeFilter, violates } from '../../infra-scripts/local/compute-emulator/alerting';

test('condition filters: whitespace or AND between terms, a metric.type required, nothing else accepted', () => {
  expect(normalizeFilter('metric.type="custom.googleapis.com/x" resource.type="gce_instance"')).toBe(
    'metric.type="custom.googleapis.com/x" AND resource.type="gce_instance"',
  );
  expect(normalizeFilter('metric.type = "a/b" AND resource.labels.zone="z"')).toBe(
    'metric.type="a/b" AND resource.labels.zone="z"',
  );
  expect(() => normalizeFilter('resource.type="gce_instance"')).toThrow(/metric.type/);
  expect(() => normalizeFilter('metric.type="a" OR metric.type="b"')).toThrow(/Unsupported filter/);
  expect(() => normalizeFilter('metric.type=starts_with("a")')).toThrow(/Unsupported filter/);
});

test('aligners and comparisons', () => {
  expect(align([1, 2, 6], 'ALIGN_MEAN')).toBe(3);
  expect(align([1, 2, 6], 'ALIGN_MAX')).toBe(6);
  expect(align([1, 2, 6], 'ALIGN_MIN')).toBe(1);
  expect(align([1, 2, 6], 'ALIGN_SUM')).toBe(9);
  expect(align([1, 2, 6], 'ALIGN_COUNT')).toBe(3);
  expect(align([], 'ALIGN_MEAN')).toBeUndefined();
  expect(align([], 'ALIGN_COUNT')).toBe(0);
  expect(violates(5, 'COMPARISON_GT', 5)).toBe(false);
  expect(violates(5, 'COMPARISON_GE', 5)).toBe(true);
  expect(violates(4, 'COMPARISON_LT', 5)).toBe(true);
  expect(violates(5, 'COMPARISON_LE', 5)).toBe(true);
  expect(violates(5, 'COMPARISON_EQ', 5)).toBe(true);
  expect(violates(5, 'COMPARISON_NE', 5)).toBe(false);
});
