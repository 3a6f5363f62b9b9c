import { parseArgs } from "node:util";
import { loadLocalConfig } from "../../shared/config/local-config";
import { EXIT, UsageError } from "../output";
import { createLocalRuntime } from "../runtime/local-runtime";
import { type RunSummary, runForever, runOnce } from "../runtime/run-local";

/** `pop2gmail run --config FILE [--once] [--json]`. */
export async function runCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { config: { type: "string", short: "c" }, once: { type: "boolean" }, json: { type: "boolean" } },
  });
  if (values.config === undefined) throw new UsageError("run needs --config FILE");
  const config = await loadLocalConfig(values.config);
  const runtime = createLocalRuntime(config);
  const stop = new AbortController();
  // First signal: finish the message in hand and exit cleanly. A second one: leave at once.
  let signals = 0;
  const onSignal = (name: string) => {
    signals++;
    if (signals > 1) process.exit(EXIT.failure);
    process.stderr.write(`pop2gmail: ${name}: finishing the message in hand, then stopping\n`);
    stop.abort();
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    if (values.once) {
      const summary = await runOnce(runtime, { signal: stop.signal });
      if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else process.stdout.write(`${describeRun(summary)}\n`);
      return summary.ok ? EXIT.ok : EXIT.failure;
    }
    process.stderr.write(
      `pop2gmail: polling ${config.mailboxes.length} mailbox(es) of ${config.tenant}; Ctrl-C stops\n`,
    );
    await runForever(runtime, {
      signal: stop.signal,
      onPass: (pass) => {
        const line = values.json
          ? JSON.stringify({ at: new Date(runtime.clock.now()).toISOString(), ...pass })
          : `${new Date(runtime.clock.now()).toISOString()} ${pass.mailboxId}: ${pass.newMessages} new, ${pass.copied} copied, ${pass.deleted} deleted, ${pass.inFlight} in flight${pass.busy ? `, busy (${pass.busy})` : ""}${pass.failure ? `, FAILED: ${pass.failure.message}${pass.failure.hint ? ` (what to do: ${pass.failure.hint})` : ""}` : ""}`;
        process.stdout.write(`${line}\n`);
      },
    });
    return EXIT.ok;
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    await runtime.close();
  }
}

/** The human-readable summary of `run --once`. */
export function describeRun(summary: RunSummary): string {
  const lines = summary.mailboxes.map((m) => {
    const parts = [
      `${m.onServer} on server`,
      `${m.newMessages} new`,
      `${m.copied} copied`,
      `${m.deleted} deleted`,
      `${m.quarantined} quarantined`,
      `${m.inFlight} in flight`,
    ];
    if (m.busy) parts.push(`busy (${m.busy}): try again later`);
    let line = `${m.mailboxId}: ${parts.join(", ")}`;
    if (m.failure)
      line += `\n  FAILED: ${m.failure.message} [${m.failure.code}]${m.failure.hint ? `\n  what to do: ${m.failure.hint}` : ""}`;
    return line;
  });
  const verdict = summary.ok
    ? "done: nothing left in flight"
    : summary.stopped
      ? "stopped before the end: run again to finish"
      : `not finished: ${summary.inFlight} message(s) in flight; run again (see \`pop2gmail status\`)`;
  return [...lines, verdict].join("\n");
}
