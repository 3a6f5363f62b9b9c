import { existsSync } from "node:fs";
import { SqliteLedger } from "../../shared/adapters/local/sqlite-ledger";
import type { LocalConfig } from "../../shared/config/local-config";
import { ConfigError } from "../../shared/core/errors";
import { LEDGER_STATES, type LedgerEntry, type LedgerState } from "../../shared/core/model";
import { EXIT, formatMs, percentile, table } from "../output";
import { localPaths } from "../runtime/local-runtime";
import { configAndFlags } from "./local-context";
import { PRE_EXISTING_CODE } from "./mark-existing";

/** One mailbox in `status --json`. */
export interface MailboxStatus {
  readonly mailboxId: string;
  readonly counts: Record<LedgerState, number>;
  /** Messages marked delivered by `init --mark-existing-delivered` (kept out of `quarantined`). */
  readonly preExisting: number;
  readonly lastPoll:
    | {
        readonly at: string;
        readonly ok: boolean;
        readonly errorCode?: string;
        readonly lastSuccessAt?: string;
      }
    | undefined;
  readonly pipelineDelayMs: { readonly p50?: number; readonly p95?: number; readonly samples: number };
  readonly quarantined: readonly {
    uidl: string;
    code?: string;
    reason?: string;
    at?: string;
    archiveKey?: string;
  }[];
}

/** `pop2gmail status --config FILE [--json]`: read-only, safe while `run` is running. */
export async function statusCommand(args: readonly string[]): Promise<number> {
  const { config, values } = await configAndFlags("status", args, {});
  const status = await collectStatus(config);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ tenant: config.tenant, dataDir: config.local.dataDir, mailboxes: status }, null, 2)}\n`,
    );
    return EXIT.ok;
  }
  for (const m of status) {
    process.stdout.write(`${m.mailboxId}\n`);
    process.stdout.write(
      `  last poll: ${m.lastPoll ? `${m.lastPoll.at} ${m.lastPoll.ok ? "ok" : `FAILED (${m.lastPoll.errorCode}); last successful: ${m.lastPoll.lastSuccessAt ?? "never"}`}` : "never"}\n`,
    );
    process.stdout.write(
      `  ${LEDGER_STATES.map((s) => `${s} ${m.counts[s]}`).join(", ")}${m.preExisting > 0 ? ` (of those quarantined, ${m.preExisting} pre-existing)` : ""}\n`,
    );
    process.stdout.write(
      `  PipelineDelay p50 ${formatMs(m.pipelineDelayMs.p50)}, p95 ${formatMs(m.pipelineDelayMs.p95)} over ${m.pipelineDelayMs.samples} messages\n`,
    );
    if (m.quarantined.length > 0) {
      process.stdout.write(
        `${table(
          ["uidl", "code", "since", "reason"],
          m.quarantined.map((q) => [q.uidl, q.code ?? "", q.at ?? "", q.reason ?? ""]),
        )}\n`,
      );
      process.stdout.write("  what to do: fix the cause, then `pop2gmail quarantine retry --config FILE`\n");
    }
  }
  return EXIT.ok;
}

/** Reads the ledger of every configured mailbox. */
export async function collectStatus(config: LocalConfig): Promise<MailboxStatus[]> {
  const path = localPaths(config.local.dataDir).ledger;
  if (!existsSync(path)) {
    throw new ConfigError(
      "local.dataDir",
      `no ledger at ${path}: pop2gmail has not run with this config yet`,
      {
        hint: "Run `pop2gmail run --config FILE --once` first (or check local.dataDir).",
      },
    );
  }
  const ledger = new SqliteLedger({ path });
  try {
    const polls = ledger.lastPolls();
    const result: MailboxStatus[] = [];
    for (const mailbox of config.mailboxes) {
      const key = { tenant: config.tenant, mailboxId: mailbox.id };
      const stored = ledger.countByState(key);
      const counts = Object.fromEntries(LEDGER_STATES.map((s) => [s, stored[s] ?? 0])) as Record<
        LedgerState,
        number
      >;
      const copied = await ledger.listByState(key, ["imported", "retained", "deleted"]);
      // The most recent 1,000 imports: the delays an operator cares about are today's.
      const delays = copied
        .filter((e) => e.importedAt !== undefined)
        .sort((a, b) => (b.importedAt ?? 0) - (a.importedAt ?? 0))
        .slice(0, 1000)
        .map((e) => (e.importedAt ?? 0) - e.listedAt);
      const quarantined = await ledger.listByState(key, ["quarantined"]);
      const poll = polls.find((p) => p.mailboxId === mailbox.id && p.tenant === config.tenant);
      const p50 = percentile(delays, 50);
      const p95 = percentile(delays, 95);
      result.push({
        mailboxId: mailbox.id,
        counts,
        lastPoll:
          poll === undefined
            ? undefined
            : {
                at: new Date(poll.at).toISOString(),
                ok: poll.ok,
                ...(poll.errorCode === undefined ? {} : { errorCode: poll.errorCode }),
                ...(poll.lastOkAt === undefined
                  ? {}
                  : { lastSuccessAt: new Date(poll.lastOkAt).toISOString() }),
              },
        pipelineDelayMs: {
          ...(p50 === undefined ? {} : { p50 }),
          ...(p95 === undefined ? {} : { p95 }),
          samples: delays.length,
        },
        ...quarantineView(quarantined),
      });
    }
    return result;
  } finally {
    ledger.close();
  }
}

/**
 * The quarantined entries of a mailbox as `status` shows them: those `init --mark-existing-delivered`
 * recorded are only counted, the others listed with their reasons.
 */
export function quarantineView(
  entries: readonly LedgerEntry[],
): Pick<MailboxStatus, "preExisting" | "quarantined"> {
  return {
    preExisting: entries.filter((q) => q.quarantineCode === PRE_EXISTING_CODE).length,
    quarantined: entries
      .filter((q) => q.quarantineCode !== PRE_EXISTING_CODE)
      .map((q) => ({
        uidl: q.uidl,
        ...(q.quarantineCode === undefined ? {} : { code: q.quarantineCode }),
        ...(q.quarantineReason === undefined ? {} : { reason: q.quarantineReason }),
        ...(q.quarantinedAt === undefined ? {} : { at: new Date(q.quarantinedAt).toISOString() }),
        ...(q.archiveKey === undefined ? {} : { archiveKey: q.archiveKey }),
      })),
  };
}
