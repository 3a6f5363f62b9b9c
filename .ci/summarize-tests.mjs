// Reads vitest's JSON report, prints one "tests: N passed, N failed" line and fails the run if
// anything was skipped, left as todo, or if no test ran at all.
import { readFileSync } from "node:fs";

const report = JSON.parse(readFileSync(process.argv[2], "utf8"));
const passed = report.numPassedTests;
const failed = report.numFailedTests;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (failed > 0 || skipped > 0 || passed === 0 || !report.success) {
  console.error("CI fails: every test must run and pass (nothing skipped).");
  process.exit(1);
}
