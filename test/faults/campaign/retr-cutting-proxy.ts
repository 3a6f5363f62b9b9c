import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of Dovecot's plaintext port that drops the connection in the middle of a
 * RETR reply, as a provider's flaky line does: for each RETR the client sends, `decide()` returns
 * how many reply bytes to forward before destroying both sockets (the client sees a reset), or
 * undefined to leave the reply alone.
 */
export class RetrCuttingProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  cutsDone = 0;

  constructor(private readonly decide: () => number | undefined) {}

  async start(targetPort: number): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect({ host: "127.0.0.1", port: targetPort });
      this.sockets.add(client);
      this.sockets.add(upstream);
      let cutAfter: number | undefined;
      let forwarded = 0;
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("data", (chunk: Buffer) => {
        if (cutAfter === undefined && /^RETR /im.test(chunk.toString("latin1"))) {
          cutAfter = this.decide();
          forwarded = 0;
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
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

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
