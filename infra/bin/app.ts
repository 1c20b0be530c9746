/**
 * CDK entry point (cdk.json: `npx tsx infra/bin/app.ts`).
 *
 *   npx cdk synth -c stage=dev
 *   npx cdk deploy --all -c stage=prod
 *
 * Everything is decided at synth time from context (infra/lib/config.ts):
 * no lookups, so `cdk synth` works offline and without credentials.
 *
 * Run without the CLI (`CDK_OUTDIR=cdk.out npx tsx infra/bin/app.ts`), the app
 * reads cdk.json's context itself, so feature flags and stages are the same.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildArchiveApp } from '../lib/archive-app';
import { PROJECT_ROOT } from '../lib/paths';

function cdkJsonContext(): Record<string, unknown> | undefined {
  if (process.env.CDK_CONTEXT_JSON !== undefined) return undefined; // the CLI passed it already
  const file = path.join(PROJECT_ROOT, 'cdk.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { context?: Record<string, unknown> }).context : undefined;
}

const app = new App({ context: cdkJsonContext() });
buildArchiveApp(app);
app.synth();
