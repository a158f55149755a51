/**
 * Jest runs TypeScript through ts-jest; suites that need the built CLI use dist/ (npm test builds first).
 *
 * Two projects: every suite against cdktf ("phase-bridge"), and the construct unit suites once more against cdktn,
 * cdktf's maintained successor ("constructs (cdktn)"): there `cdktf` and `cdktf/...` resolve to `cdktn`, for the
 * constructs' own import seam (constructs/cdktf.ts) and the tests alike. The mapping lives in that project only.
 */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };

/** Construct suites that deploy with terraform or pack the repository: slow, and not about the CDK library. */
const CONSTRUCT_E2E = ['deploy', 'package', 'cli-flow', 'identity-e2e'];

module.exports = {
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
  projects: [
    {
      displayName: 'phase-bridge',
      testEnvironment: 'node',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.test.ts'],
      transform,
    },
    {
      displayName: 'constructs (cdktn)',
      testEnvironment: 'node',
      roots: ['<rootDir>/test/constructs'],
      testMatch: ['<rootDir>/test/constructs/*.test.ts'],
      testPathIgnorePatterns: CONSTRUCT_E2E.map((name) => `/test/constructs/${name}\\.test\\.ts$`),
      moduleNameMapper: { '^cdktf$': 'cdktn', '^cdktf/(.*)$': 'cdktn/$1' },
      setupFiles: ['<rootDir>/test/constructs/cdktn.setup.js'],
      transform,
    },
  ],
};
