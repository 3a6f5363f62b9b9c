import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of Dovecot's plaintext port that drops the connection in the middle of a
 * RETR reply, as a provider's flaky line does: for each RETR the client sends, `decide()` returns
 * how many reply bytes to forward before destroying both sockets (the client sees a reset), or
 * undefined to leave the reply alone.
 *
 * With `presentUidl` it also rewrites the unique ids in UIDL replies (Dovecot's own UIDLs are never
 * reused): a server that hands the UIDL of a deleted message to new mail, as RFC 1939 §7 allows
 * once the old message is gone. The client sends one command at a time, so the reply that follows
 * a UIDL command is its reply.
 */
export class RetrCuttingProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  cutsDone = 0;

  constructor(
    private readonly decide: () => number | undefined,
    private readonly presentUidl: (real: string) => string = (real) => real,
  ) {}

  async start(targetPort: number): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect({ host: "127.0.0.1", port: targetPort });
      this.sockets.add(client);
      this.sockets.add(upstream);
      let cutAfter: number | undefined;
      let forwarded = 0;
      /** The UIDL reply being collected (undefined when the reply in progress is not one). */
      let uidlReply: { readonly multiline: boolean; chunks: Buffer[] } | undefined;
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("data", (chunk: Buffer) => {
        const command = chunk.toString("latin1");
        if (cutAfter === undefined && /^RETR /im.test(command)) {
          cutAfter = this.decide();
          forwarded = 0;
        }
        const uidl = /^UIDL( +\S+)?\r?\n/im.exec(command);
        if (uidl) uidlReply = { multiline: uidl[1] === undefined, chunks: [] };
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (uidlReply !== undefined) {
          uidlReply.chunks.push(chunk);
          const reply = Buffer.concat(uidlReply.chunks).toString("latin1");
          if (!uidlReplyComplete(reply, uidlReply.multiline)) return;
          uidlReply = undefined;
          client.write(Buffer.from(this.rewriteUidls(reply), "latin1"));
          return;
        }
        if (cutAfter === undefined) {
          client.write(chunk);
          return;
        }
        const room = cutAfter - forwarded;
        if (chunk.length < room) {
          forwarded += chunk.length;
          client.write(chunk);
          return;
        }
        this.cutsDone++;
        cutAfter = undefined;
        client.write(chunk.subarray(0, room), () => close());
      });
      client.on("error", close);
      upstream.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    this.port = typeof address === "object" && address !== null ? address.port : 0;
    this.server = server;
  }

  /** The reply with every unique id presented as `presentUidl` says. */
  private rewriteUidls(reply: string): string {
    const lines = reply.split("\r\n");
    if (!lines[0]?.startsWith("+OK")) return reply;
    const single = /^\+OK (\d+) (\S+)$/.exec(lines[0]);
    if (single)
      return [`+OK ${single[1]} ${this.presentUidl(single[2] ?? "")}`, ...lines.slice(1)].join("\r\n");
    return lines
      .map((line, index) => {
        const entry = index === 0 ? null : /^(\d+) (\S+)$/.exec(line);
        return entry ? `${entry[1]} ${this.presentUidl(entry[2] ?? "")}` : line;
      })
      .join("\r\n");
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** True once `reply` holds the whole answer to a UIDL command (RFC 1939 §7). */
function uidlReplyComplete(reply: string, multiline: boolean): boolean {
  const firstLineEnd = reply.indexOf("\r\n");
  if (firstLineEnd < 0) return false;
  if (!multiline || reply.startsWith("-ERR")) return true;
  return reply === "+OK\r\n.\r\n" || reply.endsWith("\r\n.\r\n");
}
