import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Tags, Validations, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import { loadStageConfig, type StageConfig } from './config';
import { StatefulStack } from './stacks/stateful-stack';
import { StatelessStack } from './stacks/stateless-stack';
import { PROJECT_ROOT } from './paths';

export interface ArchiveAppOptions {
  /** Defaults to the configuration read from the app's context (`-c stage=…`). */
  readonly config?: StageConfig;
  /** Register the cdk-nag AwsSolutions and HIPAA Security packs. @default true */
  readonly nag?: boolean;
}

export interface ArchiveStacks {
  readonly config: StageConfig;
  readonly stateful: StatefulStack;
  readonly stateless: StatelessStack;
}

/**
 * Builds both stacks of one stage into `app` and registers the cdk-nag packs
 * as CDK validation plugins (cdk-nag v3): any finding that is not acknowledged
 * fails synthesis, and every finding lands in the cloud assembly's
 * policy-validation report.
 */
export function buildArchiveApp(app: App, options: ArchiveAppOptions = {}): ArchiveStacks {
  const config = options.config ?? loadStageConfig(app.node);
  const env: Environment | undefined = config.account || config.region ? { account: config.account, region: config.region } : undefined;
  const prefix = `DicomWeb-${config.stageName}`;
  const tags = { project: 'dicomweb-archive', stage: config.stageName };

  const stateful = new StatefulStack(app, `${prefix}-Stateful`, {
    env,
    config,
    tags,
    description: `DICOMweb archive (${config.stageName}): data — KMS key, bucket, index table, user pool. Retained.`,
  });
  const stateless = new StatelessStack(app, `${prefix}-Stateless`, {
    env,
    config,
    tags,
    data: stateful,
    tokenIssuer: stateful.tokenIssuer(config),
    webSiteDir: webSiteDir(app),
    description: `DICOMweb archive (${config.stageName}): API, functions, ingest queue, alarms.`,
  });
  stateless.addStackDependency(stateful);
  for (const [k, v] of Object.entries(tags)) Tags.of(app).add(k, v);

  if (options.nag ?? true) {
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app));
  }
  return { config, stateful, stateless };
}

/** `-c webSiteDir=dist/web`: deploy the web UI and OHIF (built by `npm run build:web`) with the stack. */
function webSiteDir(app: App): string | undefined {
  const setting = app.node.tryGetContext('webSiteDir') as string | undefined;
  if (!setting) return undefined;
  const dir = path.resolve(PROJECT_ROOT, setting);
  if (!fs.existsSync(path.join(dir, 'index.html'))) throw new Error(`webSiteDir ${dir} holds no built site: run \`npm run build:web\` first`);
  return dir;
}
