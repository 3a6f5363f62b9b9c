import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functionEsbuildOptions } from "../../infra/bundling/function-esbuild-options";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Issue 13 item 6: copy-message under 1 MB minified (bench/README.md has the cold-start figures). */
const COPY_MESSAGE_BUDGET_BYTES = 1_000_000;

// Written outside the repository: no node_modules in reach, so each bundle must be self-contained.
let outdir: string;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), "pop2gmail-copy-bundle-"));
});

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

describe("copy-message as the stack bundles it", () => {
  it("is under 1 MB minified and holds none of google-auth-library", async () => {
    // Act
    const result = await build({
      ...functionEsbuildOptions(),
      entryPoints: [join(ROOT, "functions/copy-message/handler.ts")],
      outfile: join(outdir, "copy-message", "index.mjs"),
      metafile: true,
      logLevel: "error",
    });

    // Assess
    const [output] = Object.values(result.metafile.outputs).filter((o) => o.entryPoint !== undefined);
    expect(output?.bytes).toBeLessThan(COPY_MESSAGE_BUDGET_BYTES);
    const inputs = Object.keys(output?.inputs ?? {});
    expect(inputs.filter((i) => i.includes("node_modules/google-auth-library/"))).toEqual([]);
    expect(inputs.filter((i) => i.includes("node_modules/web-streams-polyfill/"))).toEqual([]);
    expect(inputs.some((i) => i.endsWith("shared/adapters/gmail/gmail-mail-sink.ts"))).toBe(true);
  });

  it("imports a message into Gmail through the googleapis client without google-auth-library", async () => {
    // Prepare
    const child = join(outdir, "gmail-sink-child", "index.mjs");
    await build({
      ...functionEsbuildOptions(),
      entryPoints: [join(ROOT, "test/infra/support/gmail-sink-child.ts")],
      outfile: child,
      logLevel: "error",
    });
    const gmail = new GmailApiStandIn();
    const { baseUrl, tokenUrl } = await gmail.start();
    gmail.registerOAuthUser({ user: "info@acme.it", clientId: "c", clientSecret: "s", refreshToken: "r" });
    const message =
      "From: a@example.org\r\nSubject: bundled\r\nMessage-ID: <bundle-1@example.org>\r\n\r\nhello\r\n";

    try {
      // Act
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [child, baseUrl, tokenUrl, message], (error, out, err) =>
          error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out),
        ),
      );

      // Assess
      const { gmailId } = JSON.parse(stdout) as { gmailId: string };
      const stored = gmail.messages("info@acme.it");
      expect(stored).toHaveLength(1);
      expect(stored[0]?.id).toBe(gmailId);
      expect(stored[0]?.raw.toString("utf8").endsWith(message)).toBe(true);
      expect(stored[0]?.labelIds).toEqual(expect.arrayContaining(["INBOX", "UNREAD"]));
      expect(stored[0]?.labelIds.length).toBe(3);
    } finally {
      await gmail.stop();
    }
  });
});
