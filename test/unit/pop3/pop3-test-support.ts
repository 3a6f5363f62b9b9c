import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { Pop3Client, type Pop3ConnectOptions } from "../../../shared/adapters/pop3/pop3-client";
import { ScriptedPop3Server, type ScriptedPop3ServerOptions } from "../../fakes/scripted-pop3-server";

/** SHA-256 hex of bytes, for byte-exact comparisons with short failure messages. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A small RFC 5322 message; `body` lines are joined with CRLF. */
export function makeMessage(
  subject: string,
  bodyLines: readonly (string | Buffer)[],
  finalCrlf = true,
): Buffer {
  const parts: Buffer[] = [
    Buffer.from(`From: a@example.test\r\nTo: b@example.test\r\nSubject: ${subject}\r\n\r\n`),
  ];
  bodyLines.forEach((line, index) => {
    parts.push(Buffer.from(line));
    if (index < bodyLines.length - 1 || finalCrlf) parts.push(Buffer.from("\r\n"));
  });
  return Buffer.concat(parts);
}

/** A message of `size` bytes with lines of varied content, some starting with dots. */
export function makeLargeMessage(size: number): Buffer {
  const message = Buffer.alloc(size);
  const header = Buffer.from("Subject: large\r\n\r\n");
  header.copy(message);
  let position = header.length;
  let line = 0;
  while (position < size) {
    const text =
      line % 7 === 0 ? `..dotted ${line}\r\n` : `line ${line} \u00e9\u00e8 ${"x".repeat(line % 90)}\r\n`;
    position += message.write(text, position, "latin1");
    line += 1;
  }
  // Keep the final CRLF intact so served bytes equal stored bytes.
  message.write("\r\n", size - 2, "latin1");
  return message;
}

/** Reads a stream to its end. */
export async function collect(stream: Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Resolves with what a promise rejected with (fails the test if it resolved). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection, but the promise resolved");
}

/** A started server plus a way to connect a plaintext client to it; `stop` cleans up both. */
export async function startServer(
  options: Partial<ScriptedPop3ServerOptions> & { messages: readonly Buffer[] },
): Promise<{
  server: ScriptedPop3Server;
  port: number;
  connect: (extra?: Partial<Pop3ConnectOptions>) => Promise<Pop3Client>;
  stop: () => Promise<void>;
}> {
  const server = new ScriptedPop3Server({ users: { alice: "s3cret!" }, ...options });
  const { port } = await server.start();
  const clients: Pop3Client[] = [];
  return {
    server,
    port,
    connect: async (extra = {}) => {
      const client = await Pop3Client.connect({
        host: "127.0.0.1",
        port,
        tls: "none",
        allowPlaintext: true,
        commandTimeoutMs: 5_000,
        ...extra,
      });
      clients.push(client);
      return client;
    },
    stop: async () => {
      for (const client of clients) client.destroy();
      await server.stop();
    },
  };
}
