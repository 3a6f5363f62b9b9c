import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The pop2gmail checkout the running code belongs to: the nearest folder above this module with
 * a package.json. The same answer whether the command runs as TypeScript (cli/) or as the built
 * bundle (dist/cli/ and its chunks/), so repository paths such as `tenants/` do not depend on
 * where esbuild put the file.
 */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}
