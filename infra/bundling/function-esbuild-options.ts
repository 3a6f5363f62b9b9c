import type { BuildOptions } from "esbuild";
import { FUNCTION_BUNDLING } from "../constructs/pipeline-function";

/** The project root: CDK runs esbuild here, and `--alias` targets are relative to it. */
const PROJECT_ROOT = new URL("../../", import.meta.url).pathname;

/**
 * `FUNCTION_BUNDLING` (what CDK hands the esbuild CLI) as esbuild API options, for the benches
 * and tests that bundle a handler, or code of one, the way the stack does.
 */
export function functionEsbuildOptions(): BuildOptions {
  const aliases = [FUNCTION_BUNDLING.esbuildArgs["--alias"]].flat();
  return {
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    platform: "node",
    minify: FUNCTION_BUNDLING.minify,
    sourcemap: FUNCTION_BUNDLING.sourceMap,
    sourcesContent: FUNCTION_BUNDLING.sourcesContent,
    format: FUNCTION_BUNDLING.format,
    target: FUNCTION_BUNDLING.target,
    mainFields: [...FUNCTION_BUNDLING.mainFields],
    banner: { js: FUNCTION_BUNDLING.banner },
    external: [...FUNCTION_BUNDLING.externalModules],
    alias: Object.fromEntries(aliases.map((a) => a.split("=") as [string, string])),
  };
}
