import { hostname } from "node:os";
import { join } from "node:path";
import { GmailMailSink, type GmailMailSinkOptions } from "../../shared/adapters/gmail/gmail-mail-sink";
import { FileArchiveStore } from "../../shared/adapters/local/file-archive-store";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import type { MemoryWorkQueue } from "../../shared/adapters/local/memory-work-queue";
import { SqliteLedger } from "../../shared/adapters/local/sqlite-ledger";
import type { Pop3ConnectOptions } from "../../shared/adapters/pop3/pop3-client";
import { Pop3MailboxSource } from "../../shared/adapters/pop3/pop3-mailbox-source";
import { systemClock } from "../../shared/adapters/system-clock";
import type { LocalConfig } from "../../shared/config/local-config";
import type { PipelineDeps } from "../../shared/core/pipeline-deps";
import type { ArchiveStore } from "../../shared/ports/archive-store";
import type { Clock } from "../../shared/ports/clock";
import type { SecretStore } from "../../shared/ports/secret-store";
import { JsonlTelemetry } from "./jsonl-telemetry";

/** Where the local runtime keeps its files inside `local.dataDir`. */
export function localPaths(dataDir: string) {
  return {
    ledger: join(dataDir, "ledger.sqlite"),
    archive: join(dataDir, "archive"),
    credentials: join(dataDir, "credentials.json"),
    events: join(dataDir, "events.jsonl"),
  };
}

/** Test and demo seams; everything defaults to the real thing. */
export interface LocalRuntimeOverrides {
  readonly clock?: Clock;
  readonly secrets?: SecretStore;
  readonly env?: NodeJS.ProcessEnv;
  readonly pop3ConnectOptions?: Partial<Pop3ConnectOptions>;
  readonly gmail?: Omit<Partial<GmailMailSinkOptions>, "secrets" | "google" | "clock">;
  /** Write no event log (commands that only read). */
  readonly noEventLog?: boolean;
  /** Wraps the folder archive the pipeline writes to (tests: a disk that fills up). */
  readonly decorateArchive?: (archive: FileArchiveStore) => ArchiveStore;
}

/** The adapters of one local process, built from a config. `close()` when done. */
export interface LocalRuntime {
  readonly config: LocalConfig;
  readonly ledger: SqliteLedger;
  readonly archive: FileArchiveStore;
  readonly secrets: SecretStore;
  readonly telemetry: JsonlTelemetry;
  readonly clock: Clock;
  /** Pipeline dependencies with a fresh in-process queue (one per mailbox keeps drains apart). */
  pipeline(queue: MemoryWorkQueue): PipelineDeps;
  close(): Promise<void>;
}

/**
 * Wires the same adapters the Lambdas use where they fit (our POP3 client, the Gmail sink) with
 * the local ones (SQLite ledger, folder archive, in-process queue, env/file secrets).
 */
export function createLocalRuntime(config: LocalConfig, overrides: LocalRuntimeOverrides = {}): LocalRuntime {
  const paths = localPaths(config.local.dataDir);
  const clock = overrides.clock ?? systemClock;
  const ledger = new SqliteLedger({ path: paths.ledger, now: () => clock.now() });
  const archive = new FileArchiveStore(paths.archive);
  const secrets = overrides.secrets ?? new LocalSecretStore(paths.credentials, overrides.env ?? process.env);
  const telemetry = new JsonlTelemetry(overrides.noEventLog ? undefined : paths.events, () => clock.now());
  const pop3 = new Pop3MailboxSource({
    secrets,
    ...(overrides.pop3ConnectOptions === undefined ? {} : { connectOptions: overrides.pop3ConnectOptions }),
  });
  const sink = new GmailMailSink({ ...overrides.gmail, secrets, google: config.google, clock });
  const holderId = `${hostname()}:${process.pid}`;
  const pipelineArchive = overrides.decorateArchive?.(archive) ?? archive;
  return {
    config,
    ledger,
    archive,
    secrets,
    telemetry,
    clock,
    pipeline: (queue) => ({
      ledger,
      archive: pipelineArchive,
      sink,
      queue,
      pop3,
      leases: ledger,
      clock,
      telemetry,
      holderId,
    }),
    async close() {
      await telemetry.close();
      ledger.close();
    },
  };
}
