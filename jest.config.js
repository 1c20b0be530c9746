/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': '<rootDir>/test/helpers/esbuild-transform.js' },
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/test/helpers/count-reporter.js'],
};
