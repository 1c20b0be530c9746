/**
 * Every environment variable a Lambda handler's code reads (the handler and
 * every module of functions/ it imports, found by esbuild's own resolution)
 * is set on that function by the stateless stack — unless it is listed below
 * with the reason it must stay unset in AWS. A handler that starts reading a
 * new variable fails this test until the stack sets it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build, stop as stopEsbuild } from 'esbuild';
import { Template } from 'aws-cdk-lib/assertions';
import { FUNCTION_NAMES, type FunctionName } from '../../infra/lib/config';
import { PROJECT_ROOT } from '../../infra/lib/paths';
import { removeOutdir, synthApp, type Synthesized } from './archive-app-fixture';

/** Variables the handlers may read that the stack must not set, and why. */
const NOT_SET_BY_THE_STACK: Record<string, string> = {
  S3_FORCE_PATH_STYLE: 'path-style buckets for S3 stand-ins (s3rver) in tests; real S3 uses virtual-hosted style',
};

/** Lambda's own runtime variables (set by the service, not the stack). */
const RUNTIME = /^(AWS_|_HANDLER$|_X_AMZN_TRACE_ID$|LAMBDA_|TZ$)/;

const ENV_READ = [/process\.env\.([A-Z][A-Z0-9_]*)/g, /\benv\.([A-Z][A-Z0-9_]*)/g, /\benv\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\]/g];

/** The variables read by the project's own modules that a handler's bundle contains. */
async function variablesReadBy(name: FunctionName): Promise<Set<string>> {
  const result = await build({
    entryPoints: [path.join(PROJECT_ROOT, 'functions', 'handlers', `${name}.ts`)],
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'cjs',
    packages: 'external',
    logLevel: 'silent',
  });
  const out = new Set<string>();
  for (const input of Object.keys(result.metafile!.inputs)) {
    if (!input.startsWith('functions/')) continue;
    const source = fs.readFileSync(path.join(PROJECT_ROOT, input), 'utf8');
    for (const pattern of ENV_READ) for (const m of source.matchAll(pattern)) out.add(m[1]!);
  }
  return out;
}

describe('Lambda environment: every variable a handler reads is set by the stack', () => {
  let synth: Synthesized;
  let template: Template;
  beforeAll(() => {
    synth = synthApp();
    template = Template.fromStack(synth.stateless);
  });
  afterAll(async () => {
    removeOutdir(synth);
    await stopEsbuild();
  });

  function environmentOf(name: FunctionName): Record<string, unknown> {
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((r) => r.Properties?.Description === `DICOMweb ${name}`);
    if (!fn) throw new Error(`no function for ${name}`);
    return fn.Properties.Environment?.Variables ?? {};
  }

  it.each(FUNCTION_NAMES.map((n) => [n]))('%s', async (name) => {
    const read = await variablesReadBy(name);
    expect(read.has('BUCKET_NAME')).toBe(true); // the scan sees through imports (aws-context.ts)
    const env = environmentOf(name);
    const missing = [...read].filter((v) => !RUNTIME.test(v) && !(v in NOT_SET_BY_THE_STACK) && !(v in env));
    expect({ name, missing }).toEqual({ name, missing: [] });
    for (const v of Object.keys(NOT_SET_BY_THE_STACK)) expect({ name, v, set: v in env }).toEqual({ name, v, set: false });
  });

  it('the large-object settings come from the stage config', () => {
    expect(environmentOf('wado').DOWNLOAD_URL_EXPIRES_SECONDS).toBe('300');
    expect(environmentOf('upload').MAX_UPLOAD_BYTES).toBe(String(50 * 1024 ** 3));
    expect(environmentOf('ingest').MAX_UPLOAD_BYTES).toBe(String(50 * 1024 ** 3));
  });
});
