/**
 * Size budget of the Lambda bundles: a bloated bundle (a dependency pulled in
 * whole, the SDK's every client, a data file inlined) costs every cold start
 * and fails here. Sizes and init times are recorded by `npm run measure:lambda`
 * in docs/benchmarks.md; this test only guards the budget.
 */
import { stop as stopEsbuild } from 'esbuild';
import { buildFunctions, HANDLERS, type BuiltFunction } from '../../scripts/build-functions';
import { replaceBetweenMarkers, renderTable, TABLE_END, TABLE_START } from '../../scripts/measure-lambda';
import { makeTempDir } from '../helpers/tmp';

/** Uncompressed index.js per function. Today's bundles are ≈ 0.8 MB. */
const BUDGET_BYTES = 3 * 1024 * 1024;

describe('Lambda bundle budget', () => {
  const out = makeTempDir('bundle-budget-');
  let built: BuiltFunction[];
  beforeAll(async () => {
    built = await buildFunctions(out.dir);
  }, 120_000);
  afterAll(async () => {
    await stopEsbuild();
    out.cleanup();
  });

  it.each(HANDLERS.map((h) => [h]))('%s stays under 3 MB uncompressed', (name) => {
    const b = built.find((x) => x.name === name)!;
    expect({ name, over: b.bytes > BUDGET_BYTES, bytes: b.bytes }).toEqual({ name, over: false, bytes: b.bytes });
  });
});

describe('measure:lambda rewrites only its block of docs/benchmarks.md', () => {
  it('replaces the text between the markers, keeps the rest, refuses a document without them', () => {
    const doc = `# B\n\nintro\n\n${TABLE_START}\nold table\n${TABLE_END}\n\n## infra\nkept\n`;
    const table = renderTable([{ name: 'wado', bytes: 800 * 1024, zippedBytes: 240 * 1024, mapBytes: 2900 * 1024, zippedMapBytes: 630 * 1024, initMs: [90, 100, 130] }], {
      date: '2026-12-03',
      machine: 'test',
      node: '22.23.3',
      samples: 3,
    });
    const next = replaceBetweenMarkers(doc, table);
    expect(next).toContain('| wado | 800 KiB | 240 KiB | 2900 KiB (630 KiB) | 100 ms (90–130) |');
    expect(next).not.toContain('old table');
    expect(next.startsWith('# B\n\nintro\n\n')).toBe(true);
    expect(next.endsWith(`${TABLE_END}\n\n## infra\nkept\n`)).toBe(true);
    expect(replaceBetweenMarkers(next, table)).toBe(next);
    expect(() => replaceBetweenMarkers('# no markers', table)).toThrow(/measure:lambda/);
  });
});
