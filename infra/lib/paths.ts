import * as path from 'node:path';

/** Repository root (package.json, package-lock.json, functions/). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Lambda entry files: functions/handlers/<name>.ts, one per service. */
export function handlerEntry(name: string): string {
  return path.join(PROJECT_ROOT, 'functions', 'handlers', `${name}.ts`);
}
