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

  it("keeps the Gmail sink, S3 and lib-storage out of delete-copied's bundle", () => {
    // Prepare
    const functions = synthesized.template.findResources("AWS::Lambda::Function") as Record<
      string,
      { Properties: { Code: { S3Key: string } } }
    >;
    const sourcesOf = (logicalIdPrefix: string): string[] => {
      const [, fn] = Object.entries(functions).find(([id]) => id.startsWith(logicalIdPrefix)) ?? [];
      if (fn === undefined) throw new Error(`no function ${logicalIdPrefix}`);
      const dir = join(outdir, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, "")}`);
      return (JSON.parse(readFileSync(join(dir, "index.mjs.map"), "utf8")) as { sources: string[] }).sources;
    };
    const copyOnly =
      /@googleapis\/|google-auth-library|@aws-sdk\/(client-s3|lib-storage)\/|adapters\/(gmail|s3)\//;

    // Act
    const lister = sourcesOf("ListNewMessagesFunction");
    const deleter = sourcesOf("DeleteCopiedFunction");
    const copier = sourcesOf("CopyMessageFunction");

    // Assess: the lister holds the copier's adapters behind a lazy import, for servers with a
    // long LOGIN-DELAY (docs/pipeline.md, "Login delay and UTF8"); the deleter never copies.
    expect(lister.some((s) => s.includes("adapters/lambda/list-new-messages-handler.ts"))).toBe(true);
    expect(deleter.filter((s) => copyOnly.test(s))).toEqual([]);
    expect(copier.some((s) => s.includes("adapters/gmail/gmail-mail-sink.ts"))).toBe(true);
    // The SDK is bundled (pinned), not taken from the runtime.
    expect(copier.some((s) => s.includes("@aws-sdk/lib-storage/"))).toBe(true);
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
