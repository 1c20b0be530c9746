import { advantage, mbPerSecond, percentile, summarize, verdict } from '../../scripts/bench/stats';

describe('bench statistics', () => {
  test('summarize: median of an odd and an even count, min and max, non-finite values ignored', () => {
    expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
    expect(summarize([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
    expect(summarize([7, Number.NaN, Number.POSITIVE_INFINITY])).toEqual({ median: 7, min: 7, max: 7, n: 1 });
    expect(() => summarize([])).toThrow(/no finite values/);
  });

  test('percentile by nearest rank returns an observed sample', () => {
    const xs = Array.from({ length: 20 }, (_, i) => 20 - i); // 20..1, unsorted on purpose
    expect(percentile(xs, 50)).toBe(10);
    expect(percentile(xs, 95)).toBe(19);
    expect(percentile(xs, 100)).toBe(20);
    expect(percentile([42], 95)).toBe(42);
    expect(percentile([1, 2, 3, 4, 5], 95)).toBe(5);
    expect(() => percentile(xs, 0)).toThrow();
    expect(() => percentile(xs, 101)).toThrow();
  });

  test('advantage is > 1 when ours is better, whichever way better points', () => {
    expect(advantage(500, 100, 'higher')).toBe(5);
    expect(advantage(10, 100, 'lower')).toBe(10);
    expect(advantage(100, 10, 'lower')).toBeCloseTo(0.1);
    expect(advantage(undefined, 10, 'lower')).toBeUndefined();
    expect(advantage(0, 10, 'higher')).toBeUndefined();
  });

  test('verdicts: ratio targets on the advantage, bounds on ours alone', () => {
    const ratio = { kind: 'ratio', factor: 5, text: '≥ 5×' } as const;
    expect(verdict(ratio, 500, 5)).toBe('met');
    expect(verdict(ratio, 499, 4.99)).toBe('not met');
    expect(verdict(ratio, 1, undefined)).toBe('not measured');
    const below = { kind: 'below', max: 256, text: '< 256 MB' } as const;
    expect(verdict(below, 255.9, undefined)).toBe('met');
    expect(verdict(below, 256, 10)).toBe('not met');
    expect(verdict(below, undefined, undefined)).toBe('not measured');
  });

  test('MB/s counts 10^6 bytes', () => {
    expect(mbPerSecond(5_000_000, 2)).toBe(2.5);
    expect(mbPerSecond(1, 0)).toBeNaN();
  });
});
