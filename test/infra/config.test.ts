import { DEFAULTS, loadStageConfig, resolveStageConfig, scopeNames, StageConfigError, type StageConfigInput } from '../../infra/lib/config';

function context(values: Record<string, unknown>) {
  return { tryGetContext: (key: string) => values[key] };
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof StageConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a StageConfigError');
}

describe('stage config', () => {
  it('defaults to an env-agnostic "dev" stage that validates', () => {
    const c = loadStageConfig(context({}));
    expect(c.stageName).toBe('dev');
    expect(c.account).toBeUndefined();
    expect(c.region).toBeUndefined();
    expect(c.auth.mode).toBe('cognito');
    expect(c.functions.wado.memoryMb).toBeGreaterThan(c.functions.qido.memoryMb);
    expect(c.functions.ingest.timeoutSeconds).toBeGreaterThan(30);
    expect(scopeNames(c.auth)).toEqual({ read: 'dicomweb/read', write: 'dicomweb/write', delete: 'dicomweb/delete' });
  });

  it('layers cdk.json stages.<stage> and -c config JSON over the defaults', () => {
    const c = loadStageConfig(
      context({
        stage: 'prod',
        stages: { prod: { logRetentionDays: 731, functions: { wado: { memoryMb: 2048 } }, corsOrigins: ['https://viewer.example.org'] } },
        config: JSON.stringify({ alarmEmail: 'ops@example.org', functions: { wado: { reservedConcurrency: 50 } } }),
      }),
    );
    expect(c.stageName).toBe('prod');
    expect(c.logRetentionDays).toBe(731);
    expect(c.functions.wado).toEqual({ memoryMb: 2048, timeoutSeconds: DEFAULTS.functions.wado.timeoutSeconds, reservedConcurrency: 50 });
    expect(c.functions.qido).toEqual(DEFAULTS.functions.qido);
    expect(c.corsOrigins).toEqual(['https://viewer.example.org']);
    expect(c.alarmEmail).toBe('ops@example.org');
  });

  it('accepts an external OIDC issuer, dropping Cognito-only defaults', () => {
    const c = resolveStageConfig('dev', [{ auth: { mode: 'oidc', issuer: 'https://login.example.org/realms/pacs', audience: ['dicomweb'], scopePrefix: 'api://dicomweb/' } }]);
    expect(c.auth).toEqual({ mode: 'oidc', issuer: 'https://login.example.org/realms/pacs', audience: ['dicomweb'], scopePrefix: 'api://dicomweb/' });
    expect(scopeNames(c.auth).delete).toBe('api://dicomweb/delete');
  });

  it.each<[string, StageConfigInput, RegExp]>([
    ['an OIDC issuer missing', { auth: { mode: 'oidc', audience: ['x'], scopePrefix: 'x/' } }, /auth\.issuer is required in oidc mode/],
    ['an OIDC audience missing', { auth: { mode: 'oidc', issuer: 'https://idp.example.org', scopePrefix: 'x/' } }, /auth\.audience is required/],
    ['an unknown auth mode', { auth: { mode: 'saml' as 'oidc' } }, /auth\.mode must be "cognito" or "oidc"/],
    ['an API function over the 30 s integration limit', { functions: { stow: { timeoutSeconds: 60 } } }, /functions\.stow\.timeoutSeconds must be an integer from 1 to 30/],
    ['memory out of range', { functions: { wado: { memoryMb: 64 } } }, /functions\.wado\.memoryMb must be an integer from 128 to 10240/],
    ['a log retention CloudWatch rejects', { logRetentionDays: 45 }, /logRetentionDays must be one of/],
    ['a wildcard CORS origin', { corsOrigins: ['*'] }, /corsOrigins: "\*" must be an origin/],
    ['a plain-http CORS origin', { corsOrigins: ['http://viewer.example.org'] }, /http only for localhost/],
    ['Glacier IR less than 30 days after IA', { tiering: { policy: 'lifecycle', infrequentAccessAfterDays: 30, glacierInstantRetrievalAfterDays: 45 } }, /at least 30 days after/],
    ['IA before 30 days', { tiering: { policy: 'lifecycle', infrequentAccessAfterDays: 7 } }, /infrequentAccessAfterDays must be an integer from 30/],
    ['a misspelt setting', { logRetentionDay: 30 } as StageConfigInput, /logRetentionDay: unknown setting/],
    ['a bad account id', { account: '1234' }, /account must be a 12-digit/],
    ['download URLs living over an hour', { largeObjects: { downloadUrlExpiresSeconds: 7200 } }, /largeObjects\.downloadUrlExpiresSeconds must be an integer from 1 to 3600/],
    ['an upload limit beyond S3 objects', { largeObjects: { maxUploadBytes: 6 * 1024 ** 4 } }, /largeObjects\.maxUploadBytes must be an integer/],
    ['a certificate ARN that is not ACM', { customDomain: { domainName: 'pacs.example.org', certificateArn: 'arn:aws:iam::123456789012:server-certificate/x' } }, /certificateArn must be an ACM certificate ARN/],
    ['a Cognito domain prefix with a reserved word', { auth: { mode: 'cognito', domainPrefix: 'my-cognito' } }, /domainPrefix/],
  ])('fails with a clear message on %s', (_name, layer, message) => {
    const problems = problemsOf(() => resolveStageConfig('dev', [layer]));
    expect(problems.join('\n')).toMatch(message);
  });

  it('reports every problem at once, naming the stage', () => {
    try {
      resolveStageConfig('qa', [{ logRetentionDays: 2, alarmEmail: 'nobody', functions: { qido: { memoryMb: 1 } } }]);
      throw new Error('expected a StageConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(StageConfigError);
      const message = (error as Error).message;
      expect(message).toMatch(/^Invalid stage configuration for "qa":/);
      expect((error as StageConfigError).problems).toHaveLength(3);
    }
  });

  it('rejects malformed context', () => {
    expect(problemsOf(() => loadStageConfig(context({ config: '{not json' }))).join()).toMatch(/context "config" is not valid JSON/);
    expect(problemsOf(() => loadStageConfig(context({ stage: 'Prod!' }))).join()).toMatch(/stage name must match/);
  });
});
