/**
 * The real CDK CLI (aws-cdk 2.1148, devDependency), offline and without AWS
 * credentials: `cdk synth` runs the app of cdk.json (esbuild bundling, cdk-nag)
 * into a cloud assembly, and `cdk ls --app <assembly>` reads it back — so the
 * CLI a user runs understands the assembly schema aws-cdk-lib writes, and
 * nothing on the synth path needs an account (the stacks are
 * environment-agnostic unless the stage config names one).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../infra/lib/paths';
import { makeTempDir } from '../helpers/tmp';

const CDK = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'cdk');

/** No credentials, no instance metadata, no telemetry or notices: nothing may reach AWS. */
function offlineEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('CDK_')) env[k] = v;
  return { ...env, HOME: home, AWS_EC2_METADATA_DISABLED: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true', AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'none'), AWS_CONFIG_FILE: path.join(home, 'none') };
}

function cdk(args: string[], home: string) {
  const out = spawnSync(CDK, [...args, '--no-notices', '--no-version-reporting'], { cwd: PROJECT_ROOT, env: offlineEnv(home), encoding: 'utf8', timeout: 600_000 });
  if (out.status !== 0) throw new Error(`cdk ${args.join(' ')} exited ${out.status}:\n${out.stderr.slice(-2000)}`);
  return out;
}

describe('CDK CLI, offline', () => {
  const tmp = makeTempDir('cdk-cli-');
  afterAll(() => tmp.cleanup());

  it('cdk synth --quiet -o <dir>, then cdk ls --app <dir> lists both stacks', () => {
    const assembly = path.join(tmp.dir, 'cdk.out');
    const home = path.join(tmp.dir, 'home');
    fs.mkdirSync(home);
    cdk(['synth', '--quiet', '-o', assembly], home);
    const manifest = JSON.parse(fs.readFileSync(path.join(assembly, 'manifest.json'), 'utf8')) as { version: string; artifacts: Record<string, { type: string; environment?: string }> };
    const stacks = Object.entries(manifest.artifacts).filter(([, a]) => a.type === 'aws:cloudformation:stack');
    expect(stacks.map(([id]) => id).sort()).toEqual(['DicomWeb-dev-Stateful', 'DicomWeb-dev-Stateless']);
    // Environment-agnostic: deploy takes the account and region of the caller's credentials.
    for (const [, a] of stacks) expect(a.environment).toBe('aws://unknown-account/unknown-region');
    // Function code was bundled into assets by the synth (esbuild, no Docker).
    expect(fs.readdirSync(assembly).filter((f) => f.startsWith('asset.')).length).toBeGreaterThanOrEqual(6);
    const ls = cdk(['ls', '--app', assembly], home);
    expect(ls.stdout.trim().split('\n').map((l) => l.trim()).sort()).toEqual(['DicomWeb-dev-Stateful', 'DicomWeb-dev-Stateless']);
  }, 600_000);
});
