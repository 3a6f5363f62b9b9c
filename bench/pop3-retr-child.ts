/**
 * One measurement of bench/pop3-retr.ts, in a process of its own: connect, log in, RETR 1, hash,
 * QUIT, then print one JSON line with the time and this process's peak RSS. The parent bundles
 * this file with esbuild and runs it on plain Node, so the RSS holds no TypeScript loader; each
 * client is a dynamic import (its own chunk), so no process loads the other client's code.
 */
import { createHash } from "node:crypto";
import { peakRssBytes } from "./peak-rss";

/** The clients the bench compares; "runtime-floor" does nothing and shows Node's own RSS. */
export type ClientName = "ours-plain" | "ours-implicit-tls" | "node-pop3-plain" | "runtime-floor";

/** Where the bench's Dovecot listens; passed in the POP3_RETR_BENCH environment variable. */
export interface ChildConfig {
  readonly host: string;
  readonly plainPort: number;
  readonly tlsPort: number;
  readonly caPem: string;
  readonly user: string;
  readonly password: string;
}

/** What one child measured. */
export interface ChildResult {
  readonly client: ClientName;
  readonly ms: number;
  readonly maxRssKiB: number;
  readonly size: number;
  readonly sha256: string;
}

async function measure(client: ClientName, config: ChildConfig): Promise<ChildResult> {
  const hash = createHash("sha256");
  let size = 0;
  const started = performance.now();
  if (client === "ours-plain" || client === "ours-implicit-tls") {
    const { Pop3Client } = await import("../shared/adapters/pop3/pop3-client");
    const pop3 = await Pop3Client.connect(
      client === "ours-plain"
        ? { host: config.host, port: config.plainPort, tls: "none", allowPlaintext: true }
        : { host: config.host, port: config.tlsPort, tls: "implicit", ca: config.caPem },
    );
    await pop3.login(config.user, config.password, "user");
    // Streamed into the hash, as the copy step streams into S3: nothing holds the whole message.
    for await (const chunk of pop3.retrieve(1)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    await pop3.quit();
  } else if (client === "node-pop3-plain") {
    const { default: Pop3Command } = await import("node-pop3");
    const pop3 = new Pop3Command({
      user: config.user,
      password: config.password,
      host: config.host,
      port: config.plainPort,
    });
    // node-pop3 hands back a string (UTF-8-decoded, still dot-stuffed); hash it as UTF-8 bytes.
    const bytes = Buffer.from(await pop3.RETR(1), "utf8");
    hash.update(bytes);
    size = bytes.length;
    await pop3.QUIT();
  }
  const ms = performance.now() - started;
  return { client, ms, maxRssKiB: Math.round(peakRssBytes() / 1024), size, sha256: hash.digest("hex") };
}

const client = process.argv[2] as ClientName;
const config = JSON.parse(process.env.POP3_RETR_BENCH ?? "{}") as ChildConfig;
measure(client, config).then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error);
    process.exit(1);
  },
);
