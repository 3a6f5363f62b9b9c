import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../../shared/core/errors";

/**
 * One pop2gmail process at a time per data directory (`<dataDir>/run.lock` holds its pid). The
 * local runtime relies on it: a lease or an import claim found at start-up belongs to a process
 * that is gone, so it can be dropped instead of waiting for it to expire.
 */
export async function acquireRunLock(dataDir: string): Promise<{ release(): Promise<void> }> {
  const path = join(dataDir, "run.lock");
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  for (let tries = 0; tries < 2; tries++) {
    try {
      const file = await open(path, "wx", 0o600);
      await file.writeFile(`${process.pid}\n`);
      await file.close();
      return { release: () => rm(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
      if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new ConfigError("local.dataDir", `another pop2gmail process (pid ${pid}) is using ${dataDir}`, {
          hint: `Stop that process first, or give this config another local.dataDir. If pid ${pid} is not pop2gmail, delete ${path}.`,
        });
      }
      // Left behind by a process that was killed: take it over.
      await rm(path, { force: true });
    }
  }
  throw new ConfigError("local.dataDir", `cannot lock ${dataDir}`, { hint: `Delete ${path} and try again.` });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
