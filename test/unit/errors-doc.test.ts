import * as fs from 'node:fs';
import * as path from 'node:path';
import { ERRORS } from '../../functions/core/archive/errors';
import { PROJECT_ROOT } from '../helpers/paths';

describe('docs/errors.md', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'errors.md'), 'utf8');
  const rows = new Map<string, { status: number; message: string }>();
  for (const m of doc.matchAll(/^\| ([A-Z_]+) \| (\d{3}) \| (.+) \|$/gm)) rows.set(m[1]!, { status: Number(m[2]), message: m[3]! });

  it('lists every error code with its status and message, and nothing else', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERRORS).sort());
    for (const [code, entry] of Object.entries(ERRORS)) {
      expect({ code, ...rows.get(code) }).toEqual({ code, status: entry.status, message: entry.message });
    }
  });
});
