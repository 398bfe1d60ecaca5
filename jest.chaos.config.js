/** The failure suite (`npm run test:chaos`): one sandbox, every fault in turn, a printed table. */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/chaos'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  maxWorkers: 1,
  testTimeout: 600_000,
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
  setupFilesAfterEnv: ['<rootDir>/test/harness/jest-env.ts'],
};
