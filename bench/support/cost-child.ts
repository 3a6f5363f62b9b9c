/**
 * The Lambda containers of `bench/cost.ts` in one process: bundled by esbuild and run by plain
 * `node` as on Lambda, it imports the three pipeline function modules (each builds its
 * dependencies from `process.env` at load, once, as a container does) and invokes a handler for
 * each IPC request. Per invocation it reports wall time, CPU time and what the handler wrote to
 * stdout (the JSON log lines and EMF metric lines Lambda ships to CloudWatch Logs), in bytes and
 * lines; the lines themselves are not printed.
 *
 *   parent -> { id, fn: "list-new-messages" | "copy-message" | "delete-copied", event, memoryMiB }
 *   child  -> { id, response, initMs, durationMs, cpuMs, logBytes, logLines, metrics } | { id, error }
 */
import { benchContext } from "./lambda-context";

interface Request {
  readonly id: number;
  readonly fn: "list-new-messages" | "copy-message" | "delete-copied";
  readonly event: unknown;
  readonly memoryMiB: number;
}

let logBytes = 0;
let logLines = 0;
/** Custom metrics written as EMF lines during the invocation (names). */
let metrics: string[] = [];
// Lambda's runtime turns each line written to stdout into one CloudWatch Logs event.
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
  const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
  if (process.env.BENCH_COST_ECHO === "1") process.stderr.write(text);
  logBytes += Buffer.byteLength(text);
  for (const line of text.split("\n")) {
    if (line.length === 0) continue;
    logLines++;
    if (line.includes('"_aws"')) metrics.push(...emfMetricNames(line));
  }
  const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
  done?.();
  return true;
}) as typeof process.stdout.write;

function emfMetricNames(line: string): string[] {
  try {
    const emf = JSON.parse(line) as { _aws?: { CloudWatchMetrics?: { Metrics?: { Name: string }[] }[] } };
    return (emf._aws?.CloudWatchMetrics ?? []).flatMap((d) => (d.Metrics ?? []).map((m) => m.Name));
  } catch {
    return [];
  }
}

type Handler = (event: unknown, context: ReturnType<typeof benchContext>) => Promise<unknown>;
const handlers: Record<Request["fn"], () => Promise<Handler>> = {
  "list-new-messages": () =>
    import("../../functions/list-new-messages/handler").then((m) => m.handler as unknown as Handler),
  "copy-message": () =>
    import("../../functions/copy-message/handler").then((m) => m.handler as unknown as Handler),
  "delete-copied": () =>
    import("../../functions/delete-copied/handler").then((m) => m.handler as unknown as Handler),
};
const loaded = new Map<string, Promise<Handler>>();

process.on("message", (request: Request) => {
  void (async () => {
    try {
      let handler = loaded.get(request.fn);
      const initStart = performance.now();
      if (handler === undefined) {
        handler = handlers[request.fn]();
        loaded.set(request.fn, handler);
      }
      const invoke = await handler;
      const initMs = performance.now() - initStart;
      logBytes = 0;
      logLines = 0;
      metrics = [];
      const cpu0 = process.cpuUsage();
      const start = performance.now();
      const response = await invoke(request.event, benchContext(request.fn, request.memoryMiB, 300_000));
      const durationMs = performance.now() - start;
      const cpu = process.cpuUsage(cpu0);
      process.send?.({
        id: request.id,
        response,
        initMs,
        durationMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        logBytes,
        logLines,
        metrics,
      });
    } catch (error) {
      process.send?.({ id: request.id, error: error instanceof Error ? error.stack : String(error) });
    }
  })();
});
process.send?.({ ready: true });
