/**
 * The HTTP API's routes (infra/lib/constructs/dicomweb-api.ts ROUTES) send
 * every route of the archive's route table to the function of its service,
 * with that service's scope — as API Gateway picks routes (the most specific
 * match: literal segments before `{param}` before `{proxy+}`). A route added
 * to the core (rendered, archive, …) without an API route would otherwise
 * reach the catch-all (the QIDO function) and be a 404 in AWS only.
 */
import { ROUTES, type ApiRoute } from '../../infra/lib/constructs/dicomweb-api';
import type { Route } from '../../functions/core/archive/app';
import { startTestArchive } from '../helpers/archive';

const SCOPE = { stow: 'write', upload: 'write', qido: 'read', wado: 'read', delete: 'delete', meta: 'read' } as const;

/** A concrete request path for a route template ({name} → a UID-like segment). */
function samplePath(template: string): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'frames' ? '1' : name === 'path' ? '7FE00010' : name === 'id' ? 'a'.repeat(40) : '1.2.3'));
}

/** Lexicographic comparison of two specificity scores. */
function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? -1) !== (b[i] ?? -1)) return (a[i] ?? -1) - (b[i] ?? -1);
  return 0;
}

/** API Gateway's choice for a method and path (undefined: no route → 404 from API Gateway itself). */
function apiRouteFor(method: string, path: string): ApiRoute | undefined {
  const segments = path.split('/').filter(Boolean);
  let best: { route: ApiRoute; score: number[] } | undefined;
  for (const route of ROUTES) {
    if (!route.methods.map(String).includes(method)) continue;
    const pattern = route.path.split('/').filter(Boolean);
    const greedy = pattern.at(-1) === '{proxy+}';
    const fixed = greedy ? pattern.slice(0, -1) : pattern;
    if (greedy ? segments.length <= fixed.length : segments.length !== fixed.length) continue;
    if (!fixed.every((p, i) => p.startsWith('{') || p === segments[i])) continue;
    // More specific first: no greedy variable, then literal segments by position.
    const score = [greedy ? 0 : 1, fixed.length, ...fixed.map((p) => (p.startsWith('{') ? 0 : 1))];
    if (!best || compareScores(score, best.score) > 0) best = { route, score };
  }
  return best?.route;
}

describe('HTTP API routes cover the route table', () => {
  let routes: Route[];
  beforeAll(async () => {
    const archive = await startTestArchive();
    routes = archive.app.routes;
    await archive.stop();
  });

  it('every route reaches its own service with its scope', () => {
    const problems: string[] = [];
    for (const r of routes) {
      const api = apiRouteFor(r.method, `${samplePath(r.path)}`);
      const service = r.service === 'meta' ? api?.service : r.service;
      if (!api || api.service !== service || api.scope !== SCOPE[r.service]) problems.push(`${r.method} ${r.path} (${r.service}) → ${api ? `${api.path} (${api.service}, ${api.scope})` : 'no API route'}`);
    }
    expect(problems).toEqual([]);
  });

  it('the matcher follows API Gateway precedence (sanity)', () => {
    expect(apiRouteFor('GET', '/studies/1.2.3/series')?.service).toBe('qido');
    expect(apiRouteFor('GET', '/studies/1.2.3/series/1.2.3')?.service).toBe('wado');
    expect(apiRouteFor('GET', '/studies/1.2.3/series/1.2.3/instances/1.2/frames/1')?.path).toBe('/studies/{study}/series/{series}/instances/{instance}/{proxy+}');
    expect(apiRouteFor('GET', '/nothing/here')?.path).toBe('/{proxy+}');
  });
});
