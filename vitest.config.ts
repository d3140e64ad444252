import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Builds dist when stale (the Functions host forks its compiled worker); one Azurite for the run.
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: ['test/secrets-scan.test.ts', 'test/openapi-conformance.test.ts'],
        },
      },
      {
        // Reads what every other file recorded, so it runs once they are all done.
        extends: true,
        test: { name: 'secrets-scan', include: ['test/secrets-scan.test.ts'], sequence: { groupOrder: 1 } },
      },
      {
        // Checks every answer the other files received against the OpenAPI description, once they are done.
        extends: true,
        test: {
          name: 'openapi-conformance',
          include: ['test/openapi-conformance.test.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
