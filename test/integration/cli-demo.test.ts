import { describe, expect, it } from "vitest";
import { runCli } from "./support/cli-process";

// `npm start` runs `pop2gmail demo`: the README's main-job command must finish and show its proof.
describe("pop2gmail demo", () => {
  it("moves the generated mailbox into the stand-in and prints the summary with every check passed", async () => {
    // Prepare
    const args = ["demo"];
    // Act
    const result = await runCli(args);
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/messages\s+50/);
    expect(result.stdout).toMatch(/PipelineDelay p50 \/ p95\s+\S+/);
    expect(result.stdout).toMatch(/ok {3}archived byte-exact .* 50\/50/);
    expect(result.stdout).toMatch(/ok {3}in Gmail exactly once .* 50\/50/);
    expect(result.stdout).toMatch(/ok {3}POP3 mailbox empty/);
    expect(result.stdout).toContain("demo passed");
    expect(result.stderr).toContain("importing: 50/50");
  });
});
