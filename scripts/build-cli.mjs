#!/usr/bin/env node
/**
 * Builds the `pop2gmail` command: `cli/main.ts` and everything it imports, bundled by esbuild
 * into plain JavaScript that `node` runs without tsx (package.json `bin`).
 *
 *   node scripts/build-cli.mjs [--outdir DIR]     (npm run build; default dist/cli)
 *
 * Output: DIR/pop2gmail.mjs, plus DIR/chunks/ for what the verbs load on demand (`check`'s
 * Google client, the AWS SDK of `--aws`), so `help` or `run` parse only what they use.
 * better-sqlite3 stays a package: it loads a native addon by a path relative to its own files.
 * The built files look for it, and for `tenants/`, from where they sit, so DIR must be inside
 * this repository (it is gitignored under dist/). Measured: bench/README.md, "The built command".
 */
import { chmod, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

const { values } = parseArgs({ options: { outdir: { type: "string" } } });
const outdir = resolve(values.outdir ?? join(ROOT, "dist", "cli"));

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: { pop2gmail: "cli/main.ts" },
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  mainFields: ["module", "main"],
  minify: true,
  // Stack traces (POP2GMAIL_DEBUG=1) name our files when run with --enable-source-maps.
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "none",
  external: ["better-sqlite3"],
  // Bundled CommonJS dependencies call `require`; ESM output has none of its own.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __pop2gmailRequire } from 'node:module';const require = __pop2gmailRequire(import.meta.url);",
  },
  logLevel: "warning",
});
await chmod(join(outdir, "pop2gmail.mjs"), 0o755);
