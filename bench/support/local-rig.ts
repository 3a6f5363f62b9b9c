/**
 * The rig of the local-runtime benches: a real Dovecot and the Gmail API stand-in in this process,
 * a temp data dir with a config and the secrets, and the local runtime in a child process
 * (`runtime-child.ts`) so that its CPU time is its own. `close()` stops everything it started.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { localPaths } from "../../cli/runtime/local-runtime";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import { parseLocalConfig } from "../../shared/config/local-config";
import { type DovecotServer, startDovecot } from "../../test/fakes/dovecot";
import { GmailApiStandIn } from "../../test/fakes/gmail-api-stand-in";
import type { RuntimeChildReport } from "./runtime-child";

const POP3_USER = "bench";
const GMAIL_USER = "bench.user@gmail.example";

/** Options of {@link startLocalRig}. */
export interface LocalRigOptions {
  readonly pollSeconds?: number;
  /** Quota of the stand-in and of the sink's own pacing; absent: no quota (the sink's set very high). */
  readonly quotaUnitsPerMinute?: number;
  readonly batchSize?: number;
  /** Mailboxes, each its own POP3 user and its own Gmail user (default 1). */
  readonly mailboxes?: number;
  /** Real ms each Gmail import takes at the stand-in (default 0). */
  readonly importLatencyMs?: number;
  /** `local.parallelMailboxes` (absent: the runtime's default; 1: one mailbox at a time). */
  readonly parallelMailboxes?: number;
  /** `google.maxConcurrentImports` (the sink's per-user cap, and the imports kept in flight). */
  readonly maxConcurrentImports?: number;
  /**
   * Runs the runtime child under `strace -f -c -e trace=fsync,fdatasync -o <file>` (the syscall
   * summary of that process alone, not Dovecot's).
   */
  readonly straceTo?: string;
}

/** A running runtime child. */
export interface RuntimeChild {
  readonly pid: number;
  /** Resolves with the child's report once it exits. */
  readonly done: Promise<RuntimeChildReport>;
  /** SIGTERM: the runtime finishes the message in hand and reports. */
  stop(): void;
}

export interface LocalRig {
  readonly dovecot: DovecotServer;
  readonly gmail: GmailApiStandIn;
  readonly gmailUser: string;
  /** The Gmail user of each mailbox, in order (the first is `gmailUser`). */
  readonly gmailUsers: readonly string[];
  deliver(bytes: Buffer): Promise<string>;
  /** Delivers into the POP3 box of mailbox `index` (0-based). */
  deliverTo(index: number, bytes: Buffer): Promise<string>;
  /** Messages still stored in the POP3 box of mailbox `index`. */
  storedIn(index: number): Promise<number>;
  /** Starts the runtime child; resolves once it has loaded (its "ready" line). */
  startRuntime(mode: "once" | "forever", extraNodeArgs?: readonly string[]): Promise<RuntimeChild>;
  close(): Promise<void>;
}

const CHILD = fileURLToPath(new URL("./runtime-child.ts", import.meta.url));

export async function startLocalRig(options: LocalRigOptions = {}): Promise<LocalRig> {
  const password = randomBytes(12).toString("hex");
  const oauth = {
    clientId: "bench-client",
    clientSecret: randomBytes(12).toString("hex"),
    refreshToken: randomBytes(24).toString("hex"),
  };
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-bench-"));
  const children = new Set<ChildProcessByStdio<null, Readable, null>>();
  let dovecot: DovecotServer | undefined;
  const gmail = new GmailApiStandIn({
    ...(options.quotaUnitsPerMinute === undefined
      ? {}
      : { quotaUnitsPerMinute: options.quotaUnitsPerMinute }),
    ...(options.importLatencyMs === undefined ? {} : { importLatencyMs: options.importLatencyMs }),
  });
  const count = Math.max(1, options.mailboxes ?? 1);
  const pop3Users = Array.from({ length: count }, (_, i) => (i === 0 ? POP3_USER : `${POP3_USER}${i + 1}`));
  const gmailUsers = pop3Users.map((_, i) => (i === 0 ? GMAIL_USER : `bench.user${i + 1}@gmail.example`));
  const close = async () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await gmail.stop();
    await dovecot?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    dovecot = await startDovecot({ users: Object.fromEntries(pop3Users.map((user) => [user, password])) });
    const pop3Port = dovecot.plainPort;
    const google = await gmail.start();
    const refreshTokens = gmailUsers.map((_, i) =>
      i === 0 ? oauth.refreshToken : randomBytes(24).toString("hex"),
    );
    for (const [i, user] of gmailUsers.entries()) {
      gmail.registerOAuthUser({ user, ...oauth, refreshToken: refreshTokens[i] ?? oauth.refreshToken });
    }
    const rawConfig = {
      tenant: "bench",
      google: {
        apiBaseUrl: google.baseUrl,
        tokenUrl: google.tokenUrl,
        quotaUnitsPerMinute: options.quotaUnitsPerMinute ?? 1_000_000,
        ...(options.maxConcurrentImports === undefined
          ? {}
          : { maxConcurrentImports: options.maxConcurrentImports }),
      },
      local: {
        dataDir: join(dir, "data"),
        ...(options.batchSize ? { batchSize: options.batchSize } : {}),
        ...(options.parallelMailboxes === undefined ? {} : { parallelMailboxes: options.parallelMailboxes }),
      },
      mailboxes: pop3Users.map((user, i) => ({
        id: i === 0 ? "info@bench.example" : `info${i + 1}@bench.example`,
        pollSeconds: options.pollSeconds ?? 60,
        pop3: {
          host: "127.0.0.1",
          port: pop3Port,
          tls: "none",
          allowPlaintext: true,
          user,
          passwordSecret: "bench/pop3",
        },
        gmail: { user: gmailUsers[i], credentialsSecret: i === 0 ? "bench/google" : `bench/google${i + 1}` },
      })),
    };
    const config = parseLocalConfig(rawConfig, dir, "bench config");
    const secrets = new LocalSecretStore(localPaths(config.local.dataDir).credentials, {});
    await secrets.set("bench/pop3", password);
    await secrets.set("bench/google", oauth);
    for (let i = 1; i < count; i++) {
      await secrets.set(`bench/google${i + 1}`, { ...oauth, refreshToken: refreshTokens[i] ?? "" });
    }
    const configPath = join(dir, "config.json");
    await writeFile(configPath, JSON.stringify(rawConfig));
    const server = dovecot;
    return {
      dovecot: server,
      gmail,
      gmailUser: GMAIL_USER,
      gmailUsers,
      deliver: (bytes) => server.deliver(POP3_USER, bytes),
      deliverTo: (index, bytes) => server.deliver(pop3Users[index] ?? POP3_USER, bytes),
      storedIn: (index) => server.storedMessageCount(pop3Users[index] ?? POP3_USER),
      startRuntime(mode, extraNodeArgs = []) {
        const nodeArgs = [...extraNodeArgs, "--import", "tsx", CHILD, configPath, mode];
        const strace = options.straceTo;
        const child =
          strace === undefined
            ? spawn(process.execPath, nodeArgs, { stdio: ["ignore", "pipe", "inherit"], env: process.env })
            : spawn(
                "strace",
                ["-f", "-c", "-e", "trace=fsync,fdatasync", "-o", strace, process.execPath, ...nodeArgs],
                { stdio: ["ignore", "pipe", "inherit"], env: process.env },
              );
        children.add(child);
        let output = "";
        let readyResolve: () => void = () => {};
        const ready = new Promise<void>((resolve) => {
          readyResolve = resolve;
        });
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString("utf8");
          if (output.startsWith("ready\n")) readyResolve();
        });
        const done = new Promise<RuntimeChildReport>((resolve, reject) => {
          child.on("error", reject);
          child.on("exit", (code) => {
            children.delete(child);
            readyResolve();
            const line = output.trim().split("\n").at(-1) ?? "";
            if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as RuntimeChildReport);
            else reject(new Error(`runtime child exited with ${code}: ${output.slice(-500)}`));
          });
        });
        // A failed start must not leave an unhandled rejection before the caller awaits `done`.
        done.catch(() => {});
        return ready.then(() => ({
          pid: child.pid ?? -1,
          done,
          stop: () => {
            child.kill("SIGTERM");
          },
        }));
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/**
 * The bytes RETR serves (and Gmail stores) for a stored message: RFC 1939 §3 ends the message
 * with a CRLF before the terminating ".", so one without a final CRLF gains one.
 */
export function servedForm(message: Buffer): Buffer {
  const endsWithCrlf = message.length >= 2 && message.subarray(-2).equals(Buffer.from("\r\n"));
  return message.length === 0 || endsWithCrlf ? message : Buffer.concat([message, Buffer.from("\r\n")]);
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** One line for a README: date, node, load average. */
export async function machineLine(): Promise<string> {
  const { loadavg, cpus } = await import("node:os");
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
  return `${new Date().toISOString()} node ${process.version}, ${cpus().length} cores, load average ${load}`;
}
