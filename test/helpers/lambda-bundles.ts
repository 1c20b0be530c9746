/**
 * The Lambda bundles as they ship (scripts/build-functions.ts; middy 7 is
 * ESM-only, so the bundle is what jest can load) against s3rver + dynalite,
 * loaded once per test file, with the handlers' JSON log lines kept out of
 * the test output.
 */
import { performance } from 'node:perf_hooks';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { stop as stopEsbuild } from 'esbuild';
import { buildFunctions, type BuiltFunction, type HandlerName } from '../../scripts/build-functions';
import { startAwsLocal, type AwsLocal } from './aws-local';
import { lambdaContext, type LambdaHandler } from './lambda-events';
import { makeTempDir } from './tmp';

export interface LambdaBundles {
  readonly aws: AwsLocal;
  readonly built: BuiltFunction[];
  /** Every bundle's API Gateway handler, required once (a single cold start each). */
  readonly handlers: Record<HandlerName, LambdaHandler>;
  /** How long each bundle's module init (the require) took, in ms. */
  readonly initMs: Record<HandlerName, number>;
  /** The PHI-free JSON log lines the handlers wrote to stdout. */
  readonly logLines: string[];
  /** Invoke a bundle's handler with a fresh context named `dicomweb-<name>`. */
  invoke(name: HandlerName, event: APIGatewayProxyEventV2): ReturnType<LambdaHandler>;
  /** A fresh instance of a bundle's handler (another cold start), e.g. under changed environment variables. */
  coldStart<T = LambdaHandler>(name: HandlerName): T;
  /** Restores process.env and stdout, stops the stand-ins and esbuild, removes the bundles. */
  stop(): Promise<void>;
}

/**
 * Builds every bundle while starting s3rver + dynalite, then sets process.env
 * (the stand-ins' variables and `env`; undefined deletes) and requires each bundle.
 */
export async function startLambdaBundles(tempPrefix: string, env: Record<string, string | undefined>): Promise<LambdaBundles> {
  const bundleDir = makeTempDir(tempPrefix);
  const savedEnv = { ...process.env };
  const [built, aws] = await Promise.all([buildFunctions(bundleDir.dir), startAwsLocal()]);
  Object.assign(process.env, aws.env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
  else process.env[k] = v;
  const logLines: string[] = [];
  const realWrite = process.stdout.write.bind(process.stdout);
  const writeSpy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.startsWith('{"time"')) {
      logLines.push(text);
      return true;
    }
    return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write);
  const fileOf = (name: HandlerName) => built.find((b) => b.name === name)!.file;
  const handlers = {} as Record<HandlerName, LambdaHandler>;
  const initMs = {} as Record<HandlerName, number>;
  for (const b of built) {
    const started = performance.now();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    handlers[b.name] = (require(b.file) as { handler: LambdaHandler }).handler;
    initMs[b.name] = performance.now() - started;
  }
  return {
    aws,
    built,
    handlers,
    initMs,
    logLines,
    invoke: (name, event) => handlers[name](event, lambdaContext(`dicomweb-${name}`)),
    coldStart<T = LambdaHandler>(name: HandlerName): T {
      let fresh: T | undefined;
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        fresh = (require(fileOf(name)) as { handler: T }).handler;
      });
      return fresh!;
    },
    async stop() {
      writeSpy.mockRestore();
      for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
      Object.assign(process.env, savedEnv);
      await aws.stop();
      await stopEsbuild();
      bundleDir.cleanup();
    },
  };
}
