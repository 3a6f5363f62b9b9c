import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import {
  type EnvironmentError,
  environmentErrorOf,
  errnoCodeOf,
  IntegrityError,
  Pop2GmailError,
  TransientError,
} from "../../core/errors";
import type { ContentDigest } from "../../core/model";
import type { ArchiveMetadata, ArchiveStore } from "../../ports/archive-store";

/** The sidecar beside each archived file; `list` skips these. */
const SIDECAR_SUFFIX = ".meta.json";

/**
 * The archive of the local runtime: one file per message under `<root>/<key>` (keys from
 * `archiveKeyFor`, e.g. `acme/info%40acme.it/<uidl>.eml`), byte-exact, with its metadata in a
 * `<key>.meta.json` sidecar. A file is written under a temp name in `tmpDir`, fsynced and then
 * renamed into place, so a crash or a broken source never leaves a partial file under its key;
 * `flush` fsyncs the folders the renames changed.
 * `tmpDir` must be on the same file system as `root` (rename is atomic only there).
 */
export class FileArchiveStore implements ArchiveStore {
  /** Folders that gained a file since the last `flush` (their fsync makes the rename durable). */
  readonly #unsynced = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly tmpDir: string = join(dirname(root), ".archive-tmp"),
  ) {}

  /** The file a key is stored in (for operators and the demo's table). */
  pathOf(key: string): string {
    return join(this.root, ...checkedSegments(key));
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, metadata: ArchiveMetadata): Promise<ContentDigest> {
    const target = this.pathOf(key);
    if (key.endsWith(SIDECAR_SUFFIX))
      throw new IntegrityError(`archive key ${key} clashes with a sidecar name`);
    const temp = join(this.tmpDir, `${randomUUID()}.part`);
    await io(`prepare the archive folder for ${key}`, async () => {
      await mkdir(this.tmpDir, { recursive: true });
      await mkdir(dirname(target), { recursive: true });
    });
    const hash = createHash("sha256");
    let size = 0;
    const file = await io(`create a temp file for ${key}`, () => open(temp, "w", 0o600));
    try {
      // Errors of the source (a broken RETR) pass through unchanged; only our own writes are mapped.
      for await (const chunk of body) {
        hash.update(chunk);
        size += chunk.byteLength;
        await io(`write ${key}`, () => file.write(chunk));
      }
      await io(`fsync ${key}`, () => file.sync());
      await io(`close ${key}`, () => file.close());
    } catch (error) {
      await file.close().catch(() => {});
      await rm(temp, { force: true }).catch(() => {});
      throw error;
    }
    try {
      await writeAtomically(
        join(this.tmpDir, `${randomUUID()}.meta`),
        `${target}${SIDECAR_SUFFIX}`,
        metadata,
      );
      await io(`move ${key} into place`, () => rename(temp, target));
      // The file's bytes are fsynced above; its folder is fsynced by `flush`, once per session
      // before the first DELE (docs/pipeline.md, "Ledger commits").
      this.#unsynced.add(dirname(target));
    } catch (error) {
      await rm(temp, { force: true }).catch(() => {});
      throw error;
    }
    return { size, sha256: hash.digest("hex") };
  }

  /** fsyncs each folder that gained a file since the last call: the renames become durable. */
  async flush(): Promise<void> {
    const folders = [...this.#unsynced];
    this.#unsynced.clear();
    for (const folder of folders) await syncDirectory(folder);
  }

  /**
   * Re-reads the file and hashes it: proves what is on disk, not what we meant to write. A missing
   * file is `false`; a file we cannot read (permissions, I/O error) is an `EnvironmentError`, not
   * a damaged archive: re-archiving would not help (docs/pipeline.md, "Environment faults").
   */
  async verify(key: string, expected: ContentDigest): Promise<boolean> {
    const path = this.pathOf(key);
    const info = await stat(path).catch((cause: unknown) => {
      if (isMissing(cause)) return undefined;
      throw ioError(`read ${key}`, cause);
    });
    if (info === undefined || !info.isFile() || info.size !== expected.size) return false;
    const hash = createHash("sha256");
    await io(`read ${key}`, async () => {
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    });
    return hash.digest("hex") === expected.sha256;
  }

  async open(key: string): Promise<AsyncIterable<Uint8Array>> {
    const path = this.pathOf(key);
    // Opened here, not lazily, so a missing file fails now with the error the port promises.
    const handle = await open(path, "r").catch((cause: unknown) => {
      if (isMissing(cause)) throw new IntegrityError(`no archived file for ${key}`, { cause });
      throw ioError(`open ${key}`, cause);
    });
    return handle.createReadStream({ highWaterMark: 256 * 1024 });
  }

  /**
   * Removes the temp files a killed process left in `tmpDir` (`*.part`, `*.meta`). Call it only
   * while holding the data directory's run lock: no other writer can be using them then.
   * Returns how many were removed.
   */
  async removeOrphans(): Promise<number> {
    const entries = await readdir(this.tmpDir).catch((cause: unknown) => {
      if (isMissing(cause)) return [] as string[];
      throw ioError("list the archive's temp folder", cause);
    });
    let removed = 0;
    for (const name of entries) {
      if (!name.endsWith(".part") && !name.endsWith(".meta")) continue;
      await io(`remove the orphaned temp file ${name}`, () => rm(join(this.tmpDir, name), { force: true }));
      removed++;
    }
    return removed;
  }

  async *list(prefix: string): AsyncIterable<{ key: string; lastModified: number }> {
    // Walk only the folder the prefix points into, then filter by the full prefix.
    const slash = prefix.lastIndexOf("/");
    const base = slash < 0 ? "" : prefix.slice(0, slash);
    const start = base === "" ? this.root : join(this.root, ...checkedSegments(base));
    for await (const relative of walk(start, base)) {
      if (relative.endsWith(SIDECAR_SUFFIX) || !relative.startsWith(prefix)) continue;
      const info = await stat(join(this.root, ...relative.split("/"))).catch(() => undefined);
      if (info !== undefined) yield { key: relative, lastModified: info.mtimeMs };
    }
  }
}

async function* walk(dir: string, relative: string): AsyncIterable<string> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const key = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) yield* walk(join(dir, entry.name), key);
    else if (entry.isFile()) yield key;
  }
}

/** Keys are `/`-separated; none of their segments may step out of the archive folder. */
function checkedSegments(key: string): string[] {
  const segments = key.split("/");
  if (segments.some((s) => s === "" || s === "." || s === ".." || s.includes(sep) || s.includes("\0"))) {
    throw new IntegrityError(`archive key ${JSON.stringify(key)} is not a safe relative path`);
  }
  return segments;
}

async function writeAtomically(temp: string, target: string, value: unknown): Promise<void> {
  await io(`write ${target}`, async () => {
    const file = await open(temp, "w", 0o600);
    try {
      await file.writeFile(`${JSON.stringify(value, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, target);
  });
}

/** fsync of the folder makes the rename itself durable (POSIX leaves it in the cache otherwise). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

/** Runs one file-system step, turning its failure into one of the port's errors (see `ioError`). */
async function io<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (cause) {
    throw ioError(what, cause);
  }
}

/**
 * A failed file-system step as our error: a full disk, a folder we may not write, a read-only or
 * failing disk is an `EnvironmentError` (no message's fault: it spends no attempt and heals once
 * fixed); anything else a `TransientError`.
 */
function ioError(what: string, cause: unknown): Pop2GmailError {
  if (cause instanceof Pop2GmailError) return cause;
  const environment: EnvironmentError | undefined = environmentErrorOf(cause, "archive", what);
  if (environment !== undefined) return environment;
  const code = errnoCodeOf(cause) ?? "";
  return new TransientError("archive", `cannot ${what}${code === "" ? "" : ` (${code})`}`, {
    cause,
    hint: "Check that the data directory is writable.",
  });
}

function isMissing(cause: unknown): boolean {
  const code = errnoCodeOf(cause);
  return code === "ENOENT" || code === "ENOTDIR";
}
