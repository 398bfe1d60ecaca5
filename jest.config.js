/** Unit, integration (real Consul, HAProxy, dnsmasq, pstest) and e2e tests. */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/chaos/'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // Integration tests start real services; two at a time fits this 2-core machine.
  maxWorkers: 2,
  testTimeout: 120_000,
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
  setupFilesAfterEnv: ['<rootDir>/test/harness/jest-env.ts'],
};
