import type { LocalConfig } from "../../shared/config/local-config";
import type { PipelineEvent } from "../../shared/ports/telemetry";
import { IN_FLIGHT_STATES } from "./run-local";

/** Quota units of one Gmail import (Gmail API usage limits). */
const IMPORT_UNITS = 25;
/** The window the rate is measured over. */
const RATE_WINDOW_MS = 60_000;

/** Where progress is written: a TTY gets a redrawn block, anything else plain lines. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** One mailbox's progress as shown. */
export interface MailboxProgress {
  readonly mailboxId: string;
  readonly done: number;
  readonly total: number;
  /** Imports per second over the last minute (0 before the first). */
  readonly ratePerSecond: number;
  /** Seconds until the mailbox's known work is done; undefined when nothing is left. */
  readonly etaSeconds: number | undefined;
}

interface Tally {
  readonly mailboxId: string;
  readonly gmailUser: string;
  done: number;
  remaining: number;
  readonly imports: number[];
}

/**
 * Progress of a `run` over a backlog (docs/pipeline.md, "Progress"): per mailbox the messages
 * imported in this run out of those known to be waiting, the rate over the last minute and an ETA
 * that knows the Gmail quota: a mailbox cannot finish before its Gmail user's quota has taken
 * every message waiting for that user, whatever its own rate. Fed by pipeline events; the
 * time is the wall clock (an operator waits in it).
 */
export class RunProgress {
  readonly #tallies = new Map<string, Tally>();
  readonly #quotaPerSecond: number;
  readonly #now: () => number;

  constructor(config: LocalConfig, now: () => number = Date.now) {
    this.#quotaPerSecond = config.google.quotaUnitsPerMinute / IMPORT_UNITS / 60;
    this.#now = now;
    for (const mailbox of config.mailboxes) {
      this.#tallies.set(mailbox.id, {
        mailboxId: mailbox.id,
        gmailUser: mailbox.gmail.user.toLowerCase(),
        done: 0,
        remaining: 0,
        imports: [],
      });
    }
  }

  /** Work already waiting at start (the ledger's in-flight entries of each mailbox). */
  setWaiting(mailboxId: string, waiting: number): void {
    const tally = this.#tallies.get(mailboxId);
    if (tally !== undefined) tally.remaining = Math.max(0, waiting);
  }

  /** Counts one pipeline event. */
  record(event: PipelineEvent): void {
    const tally = this.#tallies.get(event.mailboxId);
    if (tally === undefined) return;
    if (event.type === "listed") tally.remaining++;
    else if (event.type === "imported") {
      tally.done++;
      tally.remaining = Math.max(0, tally.remaining - 1);
      tally.imports.push(this.#now());
    } else if (event.type === "quarantined" || event.type === "vanished") {
      tally.remaining = Math.max(0, tally.remaining - 1);
    }
  }

  /** Every mailbox with work in this run, in config order. */
  snapshot(): MailboxProgress[] {
    const now = this.#now();
    const waitingByUser = new Map<string, number>();
    for (const t of this.#tallies.values()) {
      waitingByUser.set(t.gmailUser, (waitingByUser.get(t.gmailUser) ?? 0) + t.remaining);
    }
    const rows: MailboxProgress[] = [];
    for (const t of this.#tallies.values()) {
      while (t.imports.length > 0 && (t.imports[0] ?? 0) < now - RATE_WINDOW_MS) t.imports.shift();
      if (t.done === 0 && t.remaining === 0) continue;
      const first = t.imports[0];
      const spanMs = first === undefined ? 0 : Math.max(1000, now - first);
      const ratePerSecond = first === undefined ? 0 : (t.imports.length * 1000) / spanMs;
      let etaSeconds: number | undefined;
      if (t.remaining > 0) {
        // The quota bounds every mailbox of one Gmail user together.
        const byQuota = (waitingByUser.get(t.gmailUser) ?? t.remaining) / this.#quotaPerSecond;
        const byRate = ratePerSecond > 0 ? t.remaining / ratePerSecond : 0;
        etaSeconds = Math.max(byQuota, byRate);
      }
      rows.push({
        mailboxId: t.mailboxId,
        done: t.done,
        total: t.done + t.remaining,
        ratePerSecond,
        etaSeconds,
      });
    }
    return rows;
  }
}

/** "1h05m", "7m30s", "12s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** One line of a mailbox's progress. */
export function progressLine(row: MailboxProgress, width = 20): string {
  const filled = row.total === 0 ? width : Math.round((row.done / row.total) * width);
  const bar = `${"#".repeat(filled)}${"-".repeat(Math.max(0, width - filled))}`;
  const eta = row.etaSeconds === undefined ? "done" : `ETA ${formatDuration(row.etaSeconds)}`;
  return `${row.mailboxId} [${bar}] ${row.done}/${row.total} ${row.ratePerSecond.toFixed(1)}/s ${eta}`;
}

/**
 * Shows a `RunProgress`: on a TTY a block of one line per mailbox, redrawn in place every
 * `ttyEveryMs`; elsewhere plain lines every `plainEveryMs` while work is left. `log` prints a
 * line above the block (the run's own pass lines) without tearing it.
 */
export class ProgressDisplay {
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastPlain = "";

  constructor(
    private readonly progress: RunProgress,
    private readonly stream: ProgressStream,
    private readonly options: { readonly ttyEveryMs?: number; readonly plainEveryMs?: number } = {},
  ) {}

  start(): void {
    const every = this.stream.isTTY
      ? (this.options.ttyEveryMs ?? 1000)
      : (this.options.plainEveryMs ?? 30_000);
    this.#timer = setInterval(() => this.draw(), every);
    this.#timer.unref();
  }

  /** Prints `text` (a whole line) above the progress block. */
  log(out: ProgressStream, text: string): void {
    this.#clear();
    out.write(text);
    if (this.stream.isTTY) this.draw();
  }

  draw(): void {
    const rows = this.progress.snapshot();
    if (this.stream.isTTY) {
      this.#clear();
      const columns = Math.max(20, (this.stream.columns ?? 100) - 1);
      const text = rows.map((row) => progressLine(row).slice(0, columns)).join("\n");
      if (rows.length > 0) this.stream.write(`${text}\n`);
      this.#drawn = rows.length;
      return;
    }
    const busy = rows.filter((row) => row.etaSeconds !== undefined);
    if (busy.length === 0) return;
    const line = `progress: ${busy.map((row) => progressLine(row, 0).replace(" [] ", " ")).join("; ")}\n`;
    if (line === this.#lastPlain) return;
    this.#lastPlain = line;
    this.stream.write(line);
  }

  /** Stops redrawing; a TTY keeps the last block on screen. Once only. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.stream.isTTY) this.draw();
    this.#drawn = 0;
  }

  #clear(): void {
    if (!this.stream.isTTY || this.#drawn === 0) return;
    // Up to the first line of the block, then erase to the end of the screen.
    this.stream.write(`\u001b[${this.#drawn}F\u001b[J`);
    this.#drawn = 0;
  }
}

/** The states whose messages a progress counts as waiting at start. */
export const WAITING_STATES = IN_FLIGHT_STATES.filter((state) => state !== "imported");
