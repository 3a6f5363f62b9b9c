import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { RawPop3Reader } from "../../fakes/raw-pop3-reader";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** What a finished `pop2gmail` child process printed and returned. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The command the CLI tests run: the TypeScript through tsx's loader (fast to start, no build
 * step), or the built file that `POP2GMAIL_CLI_BUILT` names (e.g. `dist/cli/pop2gmail.mjs` after
 * `npm run build`), to run these suites against what `bin` ships.
 */
const COMMAND = process.env.POP2GMAIL_CLI_BUILT
  ? [process.env.POP2GMAIL_CLI_BUILT]
  : ["--import", "tsx", "cli/main.ts"];

/**
 * Starts `pop2gmail <args>` as a child process: node directly (no npx, no shell), in the
 * repository, with `env` added to a clean environment (no inherited secrets).
 */
export function startCli(
  args: readonly string[],
  env: Record<string, string> = {},
): {
  child: ChildProcess;
  done: Promise<CliResult>;
} {
  const child = spawn(process.execPath, [...COMMAND, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const done = new Promise<CliResult>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `pop2gmail <args>` to its end. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

/** Each message Dovecot serves, by UIDL, read with the independent raw reader (the byte oracle). */
export async function servedByUidl(
  host: string,
  port: number,
  user: string,
  password: string,
): Promise<Map<string, Buffer>> {
  const reader = await RawPop3Reader.login(host, port, user, password);
  try {
    const listing = (await reader.multiline("UIDL")).toString("latin1").split("\r\n").filter(Boolean);
    const served = new Map<string, Buffer>();
    for (const line of listing) {
      const [number, uidl] = line.split(" ");
      if (number === undefined || uidl === undefined) continue;
      served.set(uidl, await reader.retrieve(Number(number)));
    }
    return served;
  } finally {
    await reader.quit();
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What RETR serves for a stored message: RFC 1939 §3 adds a final CRLF when the message lacks one. */
export function servedForm(message: Buffer): Buffer {
  const endsWithCrlf = message.length >= 2 && message.subarray(-2).equals(Buffer.from("\r\n"));
  return message.length === 0 || endsWithCrlf ? message : Buffer.concat([message, Buffer.from("\r\n")]);
}
