/**
 * One Lambda container in a process of its own, bundled by esbuild and run by plain `node` as on
 * Lambda: it imports the real function module (`functions/<name>/handler.ts`, which builds its
 * dependencies from `process.env` at load) and invokes its handler as the Lambda runtime would.
 *
 *   node lambda-child.mjs baseline | list <invocations> | copy <event-file>...
 *
 * `copy` takes one SQS event file per invocation. The report (JSON) goes to `BENCH_REPORT_FILE`,
 * not stdout, because Powertools logs to stdout.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { SQSEvent } from "aws-lambda";
import { peakRssBytes } from "../peak-rss";
import { benchContext } from "./lambda-context";

/** What the child reports. */
export interface LambdaChildReport {
  readonly mode: string;
  /** Duration of each invocation, in order (the first one includes the container's first requests). */
  readonly durationsMs: readonly number[];
  /** CPU time (user + system) of each invocation. */
  readonly cpuMs: readonly number[];
  /** Module load time (import of the function module). */
  readonly initMs: number;
  readonly peakRssBytes: number;
  /** RSS after loading the module, before the first invocation. */
  readonly loadedRssBytes: number;
  readonly responses: readonly unknown[];
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  const reportFile = process.env.BENCH_REPORT_FILE;
  if (reportFile === undefined) throw new Error("BENCH_REPORT_FILE is not set");
  const durationsMs: number[] = [];
  const cpuMs: number[] = [];
  const timed = async <T>(invoke: () => Promise<T>): Promise<T> => {
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const result = await invoke();
    durationsMs.push(performance.now() - start);
    const cpu = process.cpuUsage(cpu0);
    cpuMs.push((cpu.user + cpu.system) / 1000);
    return result;
  };
  const responses: unknown[] = [];
  let initMs = 0;
  let loadedRssBytes = 0;
  if (mode === "list") {
    const t0 = performance.now();
    const { handler } = await import("../../functions/list-new-messages/handler");
    initMs = performance.now() - t0;
    loadedRssBytes = process.memoryUsage().rss;
    const mailboxId = process.env.BENCH_MAILBOX_ID ?? "";
    for (let i = 0; i < Number(rest[0] ?? 1); i++) {
      responses.push(
        await timed(() => handler({ mailboxId }, benchContext("list-new-messages", 256, 90_000))),
      );
    }
  } else if (mode === "copy") {
    const t0 = performance.now();
    const { handler } = await import("../../functions/copy-message/handler");
    initMs = performance.now() - t0;
    loadedRssBytes = process.memoryUsage().rss;
    // A gap between invocations lets the Gmail quota bucket refill, as between messages that
    // arrive apart; it is not part of any invocation's duration.
    const gapMs = Number(process.env.BENCH_GAP_MS ?? 0);
    for (const [index, file] of rest.entries()) {
      if (index > 0 && gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      const event = JSON.parse(readFileSync(file, "utf8")) as SQSEvent;
      responses.push(await timed(() => handler(event, benchContext("copy-message", 512, 300_000))));
    }
  } else if (mode !== "baseline") {
    throw new Error(`unknown mode ${mode}`);
  }
  const report: LambdaChildReport = {
    mode: mode ?? "",
    durationsMs,
    cpuMs,
    initMs,
    peakRssBytes: peakRssBytes(),
    loadedRssBytes,
    responses,
  };
  writeFileSync(reportFile, JSON.stringify(report));
  // As on Lambda, the process does not wait for idle keep-alive sockets.
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`lambda-child failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
