import * as path from 'node:path';

/** Repository root (package.json, package-lock.json, functions/). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Lambda entry files: functions/handlers/<name>.ts, one per service. */
export function handlerEntry(name: string): string {
  return path.join(PROJECT_ROOT, 'functions', 'handlers', `${name}.ts`);
}

/** The image codecs' WebAssembly, loaded at run time from beside index.js (same file as scripts/build-functions.ts CODECS_WASM). */
export const CODECS_WASM = 'node_modules/dcmjs-codecs/build/dcmjs-native-codecs.wasm';
