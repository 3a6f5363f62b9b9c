import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleConfig, type SynthesizedTenant, synthTenants } from "./synth-tenants";

/**
 * One synth to a real cloud assembly, as `cdk synth` writes it: esbuild bundles locally (no
 * Docker, no network) and the validation report is written. CDK's built-in CloudFormation schema
 * validation stays off here (20-30 s on a loaded two-core machine); `cdk synth` runs it.
 */
let outdir: string;
let synthesized: SynthesizedTenant;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), "pop2gmail-cdk-out-"));
  [synthesized] = synthTenants([exampleConfig("example-b")], { outdir }) as [SynthesizedTenant];
}, 180_000);

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

describe("offline synth", () => {
  it("bundles each function as a minified ESM file with its source map", () => {
    // Prepare
    const functions = Object.values(synthesized.template.findResources("AWS::Lambda::Function")) as {
      Properties: { Code: { S3Key: string }; Handler: string };
    }[];

    // Act
    const assetDirs = functions.map((fn) =>
      join(outdir, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, "")}`),
    );

    // Assess
    expect(functions).toHaveLength(3);
    for (const [index, dir] of assetDirs.entries()) {
      expect(functions[index]!.Properties.Handler).toBe("index.handler");
      expect(existsSync(join(dir, "index.mjs"))).toBe(true);
      expect(existsSync(join(dir, "index.mjs.map"))).toBe(true);
    }
  });

  it("writes a validation report without findings (cdk-nag runs as a validation plugin)", () => {
    // Act
    const report = JSON.parse(readFileSync(join(outdir, "validation-report.json"), "utf8")) as {
      pluginReports: { violations?: unknown[] }[];
    };

    // Assess
    expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
  });
});
