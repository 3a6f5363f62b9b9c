import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import type { PipelineEvent, Telemetry } from "../../shared/ports/telemetry";

/**
 * Telemetry of the local runtime: one JSON line per pipeline event (`at` added) appended to the
 * event log, and handed to listeners (the progress bar, the run summary). Events carry tenant,
 * mailbox, UIDL, archive key and Gmail id only: never a password, token or message body.
 * Writes are buffered by the stream, so `record` never blocks the pipeline.
 */
export class JsonlTelemetry implements Telemetry {
  private readonly stream: WriteStream | undefined;
  private readonly listeners: ((event: PipelineEvent) => void)[] = [];

  constructor(
    path: string | undefined,
    private readonly now: () => number = Date.now,
  ) {
    if (path !== undefined) {
      mkdirSync(dirname(path), { recursive: true });
      this.stream = createWriteStream(path, { flags: "a", mode: 0o600 });
      // A full disk must not crash the pipeline: the ledger, not the log, is the record.
      this.stream.on("error", () => {});
    }
  }

  /** Calls `listener` for every event from now on. */
  onEvent(listener: (event: PipelineEvent) => void): void {
    this.listeners.push(listener);
  }

  record(event: PipelineEvent): void {
    this.stream?.write(`${JSON.stringify({ at: new Date(this.now()).toISOString(), ...event })}\n`);
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener (display code) must never break the pipeline.
      }
    }
  }

  /** Flushes and closes the log. */
  close(): Promise<void> {
    const stream = this.stream;
    if (stream === undefined) return Promise.resolve();
    return new Promise((resolve) => stream.end(resolve));
  }
}
