/**
 * The local runtime in a process of its own, as `pop2gmail run` runs it, reporting its own CPU
 * time so that the servers in the parent are not counted.
 *
 *   node --import tsx bench/support/runtime-child.ts <config.json> once|forever
 *
 * `once`: one `runOnce`, then one JSON line ({@link RuntimeChildReport}) on stdout and exit.
 * `forever`: `runForever` until SIGTERM, then the same line. CPU and wall time are counted from
 * just before the run starts (after module loading), so tsx's start-up is left out.
 */

import { open } from "node:fs/promises";
import { createLocalRuntime, type LocalRuntime } from "../../cli/runtime/local-runtime";
import { runForever, runOnce } from "../../cli/runtime/run-local";
import { loadLocalConfig } from "../../shared/config/local-config";
import { peakRssBytes } from "../peak-rss";

/** What the child prints as its last stdout line. */
export interface RuntimeChildReport {
  readonly wallMs: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly copied: number;
  readonly deleted: number;
  readonly inFlight: number;
  readonly ok: boolean;
  readonly peakRssBytes: number;
  /** With `BENCH_STAGE_TIMING=1`: wall ms and calls per port method (async calls, summed). */
  readonly stages?: Record<string, { calls: number; ms: number }>;
}

type Stages = Record<string, { calls: number; ms: number }>;

/**
 * Wraps a port so that each async method call adds its wall time to `stages["port.method"]`.
 * Calls of one mailbox run one after another, so the sums add up to the drain's wall time
 * (less what runs between port calls). `archive.put` includes streaming the RETR it consumes.
 */
function timed<T extends object>(name: string, port: T, stages: Stages): T {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const start = performance.now();
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        const key = `${name}.${String(property)}`;
        const stage = stages[key] ?? { calls: 0, ms: 0 };
        stages[key] = stage;
        stage.calls++;
        return result.finally(() => {
          stage.ms += performance.now() - start;
        });
      };
    },
  });
}

/**
 * A what-if for "where does the time go", never the product: SQLite `synchronous = OFF` and a
 * no-op `FileHandle.sync()`, so the run shows what the fsyncs of the ledger and the archive cost.
 */
async function disableFsync(runtime: LocalRuntime): Promise<void> {
  const db = Reflect.get(runtime.ledger, "db") as { pragma(sql: string): unknown };
  db.pragma("synchronous = OFF");
  const handle = await open(process.execPath, "r");
  const prototype = Object.getPrototypeOf(handle) as { sync: () => Promise<void> };
  await handle.close();
  prototype.sync = async () => {};
  process.stderr.write("runtime-child: WHAT-IF run, fsync disabled (ledger and archive)\n");
}

async function main(): Promise<void> {
  const [configPath, mode] = process.argv.slice(2);
  if (configPath === undefined || (mode !== "once" && mode !== "forever"))
    throw new Error("usage: runtime-child.ts <config.json> once|forever");
  const config = await loadLocalConfig(configPath);
  const built = createLocalRuntime(config, { noEventLog: true });
  if (process.env.BENCH_WHATIF_NO_FSYNC === "1") await disableFsync(built);
  const stages: Stages | undefined = process.env.BENCH_STAGE_TIMING === "1" ? {} : undefined;
  const runtime: LocalRuntime =
    stages === undefined
      ? built
      : {
          ...built,
          close: () => built.close(),
          pipeline(queue) {
            const deps = built.pipeline(queue);
            return {
              ...deps,
              ledger: timed("ledger", deps.ledger, stages),
              leases: timed("leases", deps.leases, stages),
              archive: timed("archive", deps.archive, stages),
              sink: timed("sink", deps.sink, stages),
              pop3: timed("pop3", deps.pop3, stages),
            };
          },
        };
  const stop = new AbortController();
  process.on("SIGTERM", () => stop.abort());
  let copied = 0;
  let deleted = 0;
  let inFlight = 0;
  let ok = true;
  // Ready line: the parent starts its clock (drops, drain timing) only once we are loaded.
  process.stdout.write("ready\n");
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    if (mode === "once") {
      const summary = await runOnce(runtime, { signal: stop.signal });
      for (const m of summary.mailboxes) {
        copied += m.copied;
        deleted += m.deleted;
      }
      inFlight = summary.inFlight;
      ok = summary.ok;
    } else {
      await runForever(runtime, {
        signal: stop.signal,
        onPass: (pass) => {
          copied += pass.copied;
          deleted += pass.deleted;
          inFlight = pass.inFlight;
          if (pass.failure !== undefined || pass.busy !== undefined) {
            ok = false;
            process.stderr.write(`runtime-child: ${JSON.stringify(pass)}\n`);
          }
        },
      });
    }
  } finally {
    await runtime.close();
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const report: RuntimeChildReport = {
    wallMs,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    copied,
    deleted,
    inFlight,
    ok,
    peakRssBytes: peakRssBytes(),
    ...(stages === undefined ? {} : { stages }),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`runtime-child failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
