import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** What ships: the command, the Lambda functions and what they share, the stack. */
const PRODUCT_DIRS = ["cli", "functions", "shared", "infra"];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs|js)$/.test(entry.name) ? [path] : [];
  });
}

/** Relative module specifiers of `import`/`export ... from` and `import()` in a source file. */
function relativeImports(source: string): string[] {
  const specifiers = [...source.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g)];
  return specifiers.map((m) => m[1] ?? "");
}

// Issue 13 item 4: the demo's POP3 server, Gmail stand-in and generated mail were imported by
// cli/commands/demo.ts from test/; the built command must not depend on the test tree.
describe("product code", () => {
  it("imports nothing from test/", () => {
    // Prepare
    const files = PRODUCT_DIRS.flatMap((dir) => sourceFiles(join(ROOT, dir)));
    // Act
    const intoTests = files.flatMap((file) =>
      relativeImports(readFileSync(file, "utf8"))
        .map((specifier) => relative(ROOT, resolve(dirname(file), specifier)))
        .filter((target) => target === "test" || target.startsWith("test/"))
        .map((target) => `${relative(ROOT, file)} -> ${target}`),
    );
    // Assess
    expect(files.length).toBeGreaterThan(50);
    expect(intoTests).toEqual([]);
  });
});
