/**
 * `npm run bench`: every benchmark in turn, each in its own process, with its default size.
 * Each prints its figures; bench/README.md holds the method and the figures written down.
 */
import { spawnSync } from "node:child_process";

const BENCHES = [
  "pop3-retr.ts",
  "gmail-import-memory.ts",
  "bundle-size.ts",
  "end-to-end-memory.ts",
  "backlog-drain.ts",
  "delivery-delay.ts",
  "cost.ts",
];

let failed = 0;
for (const bench of BENCHES) {
  console.log(`\n=== bench/${bench}`);
  const run = spawnSync(process.execPath, ["--import", "tsx", `bench/${bench}`], { stdio: "inherit" });
  if (run.status !== 0) failed++;
}
process.exitCode = failed === 0 ? 0 : 1;
