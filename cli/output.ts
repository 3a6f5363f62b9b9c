import { ConfigError, Pop2GmailError } from "../shared/core/errors";

/** Exit codes scripts can rely on (README "Exit codes"): 2 is a usage or config error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** The `code` of `ConfigError`, for results that carry only an error's code. */
export const CONFIG_ERROR_CODE: ConfigError["code"] = "CONFIG_INVALID";

/** A command line the command cannot act on (unknown verb, missing argument). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint = "Run `pop2gmail help` for the verbs and their flags.",
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/** Prints what happened and what to do, and returns the exit code for the error. */
export function reportError(
  error: unknown,
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): number {
  if (error instanceof UsageError) {
    write(`pop2gmail: ${error.message}`);
    write(`  what to do: ${error.hint}`);
    return EXIT.usage;
  }
  if (error instanceof Pop2GmailError) {
    write(`pop2gmail: ${error.message} [${error.code}]`);
    if (error.hint !== undefined) write(`  what to do: ${error.hint}`);
    return error instanceof ConfigError ? EXIT.usage : EXIT.failure;
  }
  write(`pop2gmail: unexpected failure: ${error instanceof Error ? error.message : String(error)}`);
  write("  what to do: this is a bug; run again with POP2GMAIL_DEBUG=1 and report the stack trace.");
  if (process.env.POP2GMAIL_DEBUG && error instanceof Error && error.stack) write(error.stack);
  return EXIT.failure;
}

/** A one-line progress bar on a TTY (redrawn with \r); plain lines every `plainEvery` otherwise. */
export class Progress {
  private done = 0;
  private lastPlain = 0;
  constructor(
    private readonly label: string,
    private total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEvery = 10,
  ) {}

  setTotal(total: number): void {
    this.total = Math.max(total, this.done);
    this.draw();
  }

  tick(detail = ""): void {
    this.done++;
    this.draw(detail);
  }

  finish(): void {
    if (this.stream.isTTY) this.stream.write("\n");
    else if (this.lastPlain !== this.done) this.stream.write(`${this.label}: ${this.done}/${this.total}\n`);
  }

  private draw(detail = ""): void {
    if (this.stream.isTTY) {
      const width = 30;
      const filled = this.total === 0 ? 0 : Math.round((this.done / this.total) * width);
      const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
      const line = `${this.label} [${bar}] ${this.done}/${this.total} ${detail}`;
      const columns = this.stream.columns ?? 100;
      this.stream.write(`\r${line.slice(0, columns - 1).padEnd(columns - 1)}`);
    } else if (this.done > 0 && (this.done - this.lastPlain >= this.plainEvery || this.done === this.total)) {
      this.lastPlain = this.done;
      this.stream.write(`${this.label}: ${this.done}/${this.total}\n`);
    }
  }
}

/** Renders rows as an aligned text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** p-th percentile (0-100) of `values`, nearest-rank; undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** 1234567 -> "1.2 MB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** 1234 -> "1.2 s". */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "-";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
