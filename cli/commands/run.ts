import { parseArgs } from "node:util";
import { loadLocalConfig } from "../../shared/config/local-config";
import { CONFIG_ERROR_CODE, EXIT, UsageError } from "../output";
import { type MailboxRunSummary, type RunSummary, runForever, runOnce } from "../runtime/run-local";
import { ProgressDisplay, RunProgress, WAITING_STATES } from "../runtime/run-progress";
import { openLocalRuntime } from "./local-context";

/** `pop2gmail run --config FILE [--once] [--json]`. */
export async function runCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { config: { type: "string", short: "c" }, once: { type: "boolean" }, json: { type: "boolean" } },
  });
  if (values.config === undefined) throw new UsageError("run needs --config FILE");
  const config = await loadLocalConfig(values.config);
  const runtime = await openLocalRuntime(config);
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
  // Progress on stderr (docs/pipeline.md, "Progress"); `--json` output stays as it was.
  let display: ProgressDisplay | undefined;
  if (!values.json) {
    const progress = new RunProgress(config);
    for (const mailbox of config.mailboxes) {
      // Only a display: a ledger that cannot be read is reported by the run itself.
      const counts = tryOr(
        () => runtime.ledger.countByState({ tenant: config.tenant, mailboxId: mailbox.id }),
        {},
      );
      progress.setWaiting(
        mailbox.id,
        WAITING_STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0),
      );
    }
    runtime.telemetry.onEvent((event) => progress.record(event));
    display = new ProgressDisplay(progress, process.stderr);
    display.start();
  }
  try {
    if (values.once) {
      const summary = await runOnce(runtime, { signal: stop.signal });
      display?.stop();
      const verdict = runVerdict(summary);
      if (values.json) process.stdout.write(`${JSON.stringify({ ...summary, ...verdict }, null, 2)}\n`);
      else process.stdout.write(`${describeRun(summary)}\n`);
      return verdict.exitCode;
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
        if (display === undefined) process.stdout.write(`${line}\n`);
        else display.log(process.stdout, `${line}\n`);
      },
    });
    return EXIT.ok;
  } finally {
    display?.stop();
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    await runtime.close();
  }
}

function tryOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** The exit code of `run --once` and the reasons it is not 0, one line each (README "Exit codes"). */
export interface RunVerdict {
  readonly exitCode: number;
  readonly reasons: readonly string[];
}

/**
 * Maps a run to its exit code: 2 when a mailbox failed on its config (a missing secret, a
 * credentials file others can read, a setting the server refuses), 1 when anything else is not
 * done: a mailbox failed (timeout, disk, credentials...), timed out, was busy, quarantined a
 * message in this run or saw one vanish, left messages in flight, or the run was stopped; 0 only
 * when none of these happened.
 */
export function runVerdict(summary: RunSummary): RunVerdict {
  const reasons: string[] = [];
  let config = false;
  for (const m of summary.mailboxes) {
    if (m.failure) {
      if (m.failure.code === CONFIG_ERROR_CODE) config = true;
      reasons.push(`${m.mailboxId}: failed: ${m.failure.message} [${m.failure.code}]`);
    }
    if (m.quarantined > 0) {
      reasons.push(
        `${m.mailboxId}: ${m.quarantined} message(s) quarantined (left on the server): see \`pop2gmail quarantine list\``,
      );
    }
    if (m.busy) reasons.push(`${m.mailboxId}: busy (${m.busy}): try again later`);
    // Fields the runtime may report beside `failure` (cli/runtime/run-local.ts).
    const more = m as MailboxRunSummary & { readonly timedOut?: boolean; readonly gone?: number };
    if (more.timedOut === true && m.failure?.code !== "TIMEOUT") {
      reasons.push(`${m.mailboxId}: timed out before the work in hand was done: run again`);
    }
    if ((more.gone ?? 0) > 0) {
      reasons.push(
        `${m.mailboxId}: ${more.gone} message(s) left the server before they were copied: see \`pop2gmail quarantine list\``,
      );
    }
  }
  if (summary.stopped) reasons.push("stopped before the end: run again to finish");
  if (summary.inFlight > 0) {
    reasons.push(`${summary.inFlight} message(s) still in flight: run again (see \`pop2gmail status\`)`);
  }
  if (!summary.ok && reasons.length === 0) reasons.push("not finished: run again (see `pop2gmail status`)");
  return { exitCode: config ? EXIT.usage : reasons.length > 0 ? EXIT.failure : EXIT.ok, reasons };
}

/** The human-readable summary of `run --once`: per mailbox, then the verdict and its reasons. */
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
  const verdict = runVerdict(summary);
  const tail =
    verdict.exitCode === EXIT.ok
      ? ["done: nothing left in flight"]
      : [`not ok (exit ${verdict.exitCode}):`, ...verdict.reasons.map((reason) => `  ${reason}`)];
  return [...lines, ...tail].join("\n");
}
