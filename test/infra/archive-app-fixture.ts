/**
 * Synthesizes the CDK app the way `cdk synth` does (cdk.json context, feature
 * flags, both stacks, cdk-nag packs), into a temporary directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { buildArchiveApp, type ArchiveAppOptions, type ArchiveStacks } from '../../infra/lib/archive-app';
import { PROJECT_ROOT } from '../../infra/lib/paths';

export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context;

export interface SynthOptions extends ArchiveAppOptions {
  /** Extra context, over cdk.json's (e.g. { stage: 'prod', config: {...} }). */
  readonly context?: Record<string, unknown>;
  /** Run esbuild for every function (as `cdk synth` does). @default false: assets are stubbed. */
  readonly bundle?: boolean;
}

export interface Synthesized extends ArchiveStacks {
  readonly app: App;
  readonly assembly: CloudAssembly;
  readonly outdir: string;
}

/** Builds the app with cdk.json's context. Call `synth()` on the result to synthesize. */
export function buildApp(options: SynthOptions = {}): { app: App; outdir: string; stacks: ArchiveStacks } {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-infra-test-'));
  const context: Record<string, unknown> = { ...CDK_JSON_CONTEXT, ...options.context };
  if (!options.bundle) context['aws:cdk:bundling-stacks'] = [];
  const app = new App({ context, outdir });
  const stacks = buildArchiveApp(app, options);
  return { app, outdir, stacks };
}

export function synthApp(options: SynthOptions = {}): Synthesized {
  const { app, outdir, stacks } = buildApp(options);
  const assembly = app.synth();
  return { ...stacks, app, assembly, outdir };
}

export function removeOutdir(s: { outdir: string } | undefined): void {
  if (s) fs.rmSync(s.outdir, { recursive: true, force: true });
}
