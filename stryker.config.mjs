// Mutation testing of the core and the POP3 adapter (docs/mutation-testing.md).
// `npm run test:mutation` runs it incrementally from reports/stryker-incremental.json, so CI
// re-tests only the mutants whose code or covering tests changed since that file was written.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  packageManager: "npm",
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: [
    "shared/adapters/pop3/multiline-decoder.ts",
    "shared/adapters/pop3/status-line.ts",
    "shared/adapters/pop3/listing-lines.ts",
    "shared/adapters/pop3/pop3-wire.ts",
    "shared/core/header-block.ts",
    "shared/core/digesting-stream.ts",
    "shared/core/delete-policy.ts",
    "shared/core/archive-key.ts",
    "shared/core/quarantine.ts",
    "shared/core/release-from-quarantine.ts",
    "shared/core/delete-copied.ts",
  ],
  // Only the fast unit tests run against mutants: no Dovecot, no stand-ins, no fault campaign.
  testFiles: [
    "test/unit/core/**/*.test.ts",
    "test/unit/pop3/**/*.test.ts",
    "test/unit/contract-in-memory.test.ts",
  ],
  vitest: { related: false },
  // The sandbox gets only what those tests load (not the unpacked POP3 servers, infra or bench).
  ignorePatterns: ["/*", "!/shared", "!/test", "!/package.json", "!/tsconfig.json", "!/vitest.config.ts"],
  coverageAnalysis: "perTest",
  // Two cores on CI; one while other work shares the machine.
  concurrency: process.env.CI ? 2 : 1,
  timeoutMS: 10_000,
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  reporters: ["clear-text", "progress", "html"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 75, break: null },
  tempDirName: ".stryker-tmp",
  cleanTempDir: true,
};
