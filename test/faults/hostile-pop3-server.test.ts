import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pop3Client } from "../../shared/adapters/pop3/pop3-client";
import { MessageTooLargeError, Pop2GmailError, ProtocolError } from "../../shared/core/errors";
import { runs, scaledTimeout } from "./support/faults-scale";
import { OUTER_GUARD_MS, runClientPlan } from "./support/hostile-client-run";
import { HostilePop3Server, type HostileScript, stuff } from "./support/hostile-pop3-server";
import { CLIENT_BOUNDS, clientPlan, describeScript, hostileScript } from "./support/hostile-scripts";
import { ProcessGuards, withGuard } from "./support/process-guards";

const MiB = 1024 * 1024;
const CRLF = "\r\n";

describe("the POP3 client against hostile servers", () => {
  let server: HostilePop3Server;
  let port: number;
  const guards = new ProcessGuards();

  beforeAll(async () => {
    server = new HostilePop3Server();
    port = await server.start();
    guards.install();
  });
  afterAll(async () => {
    guards.uninstall();
    await server.stop();
  });

  const proper = { body: { kind: "proper" }, splits: [], tail: { kind: "none" } } as const;

  /**
   * The tests below check bounds and bytes, not timing: they get calm timeouts, so a loaded
   * machine (the test server shares this event loop) cannot turn their outcome into a TimeoutError.
   */
  const CALM_MS = 10_000;
  const CALM_GUARD_MS = 3 * CALM_MS;

  function connect(extra: { maxListingBytes?: number } = {}): Promise<Pop3Client> {
    return Pop3Client.connect({
      host: "127.0.0.1",
      port,
      tls: "none",
      allowPlaintext: true,
      commandTimeoutMs: CALM_MS,
      connectionDeadlineMs: CALM_MS,
      maxLineBytes: CLIENT_BOUNDS.maxLineBytes,
      ...extra,
    });
  }

  it(
    "ends every call in time with a typed error, throws nothing uncaught and keeps memory bounded",
    async () => {
      // Prepare
      const rssBefore = process.memoryUsage().rss;
      let largestRetr = 0;

      // Act
      await fc.assert(
        fc.asyncProperty(hostileScript, clientPlan, async (script, plan) => {
          server.play(script);
          try {
            const report = await runClientPlan(port, plan);
            largestRetr = Math.max(largestRetr, report.largestRetr);
            // Assess (per run)
            const hung = report.outcomes.filter((o) => o.kind === "hung").map((o) => o.call);
            expect(hung, `calls still pending after ${OUTER_GUARD_MS} ms`).toEqual([]);
            const untyped = report.outcomes.flatMap((o) =>
              o.kind === "rejected" && !(o.error instanceof Pop2GmailError) ? [String(o.error)] : [],
            );
            expect(untyped, "rejections that are not Pop2GmailError").toEqual([]);
            expect(report.largestRetr).toBeLessThanOrEqual(CLIENT_BOUNDS.retrMaxBytes);
          } finally {
            server.dropAll();
          }
          const escaped = await guards.drain();
          expect(escaped.map(String), "uncaught exceptions or unhandled rejections").toEqual([]);
        }),
        {
          numRuns: runs(100),
          reporter: (details) => {
            if (details.failed) {
              const [script] = (details.counterexample ?? []) as [HostileScript?];
              throw new Error(
                `${fc.defaultReportMessage(details)}\nscript: ${script ? describeScript(script) : "?"}\n` +
                  `failure: ${String(details.errorInstance)}`,
              );
            }
          },
        },
      );

      // Assess
      expect(largestRetr).toBeLessThanOrEqual(CLIENT_BOUNDS.retrMaxBytes);
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * MiB);
    },
    scaledTimeout(120_000),
  );

  it("turns a malformed -ERR sent unprompted into a typed error, not an uncaught exception", async () => {
    // Prepare: the property above found this: "+OK", then a "-ERR<TAB>" nobody asked for, sent in
    // the same write so it is surely pending when the next command goes out. Before the fix in
    // Pop3Wire, parsing it inside the socket's close handler threw an uncaught ProtocolError.
    server.play({
      greeting: proper,
      replies: [
        {
          body: { kind: "raw", bytes: Buffer.from(`+OK${CRLF}-ERR\t${CRLF}`) },
          splits: [],
          tail: { kind: "none" },
        },
      ],
      afterwards: "proper",
    });
    const client = await connect();
    let second: unknown;
    let third: unknown;
    try {
      // Act
      await client.noop();
      second = await client.noop().catch((error: unknown) => error);
      third = await client.noop().catch((error: unknown) => error);
    } finally {
      client.destroy();
      server.dropAll();
    }

    // Assess
    expect(second).toBeInstanceOf(Pop2GmailError);
    expect(third).toBeInstanceOf(Pop2GmailError);
    expect((await guards.drain()).map(String)).toEqual([]);
  });

  it(
    "cuts off a RETR body that never ends with MessageTooLargeError at maxBytes",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ minLength: 1, maxLength: 2_000 }),
          fc.integer({ min: 1, max: 256 * 1024 }),
          async (line, maxBytes) => {
            // Prepare
            const noDots = new Uint8Array(Buffer.from(line).map((b) => (b === 0x2e ? 0x2f : b)));
            server.play({
              greeting: proper,
              replies: [
                {
                  body: { kind: "endless", prefix: Buffer.from(`+OK${CRLF}`), line: noDots },
                  splits: [],
                  tail: { kind: "none" },
                },
              ],
              afterwards: "close",
            });
            let received = 0;
            try {
              const client = await connect();

              // Act
              const outcome = await withGuard(
                (async () => {
                  try {
                    for await (const chunk of client.retrieve(1, { maxBytes }))
                      received += (chunk as Buffer).length;
                    return "completed";
                  } catch (error) {
                    return error;
                  }
                })(),
                CALM_GUARD_MS,
                () => "hung",
              );
              client.destroy();

              // Assess
              expect(outcome).toBeInstanceOf(MessageTooLargeError);
              expect(received).toBeLessThanOrEqual(maxBytes);
            } finally {
              server.dropAll();
            }
            expect((await guards.drain()).map(String)).toEqual([]);
          },
        ),
        { numRuns: runs(30) },
      );
    },
    scaledTimeout(60_000),
  );

  it(
    "cuts off a LIST, UIDL or CAPA listing that never ends with ProtocolError at maxListingBytes",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom("list", "uidl", "capa"),
          fc.integer({ min: 1, max: 999_999 }),
          fc.integer({ min: 64, max: 512 * 1024 }),
          async (command, first, maxListingBytes) => {
            // Prepare
            const line = Buffer.from(
              command === "uidl" ? `${first} uid-${first}${CRLF}` : `${first} ${first * 3}${CRLF}`,
            );
            server.play({
              greeting: proper,
              replies: [
                {
                  body: { kind: "endless", prefix: Buffer.from(`+OK${CRLF}`), line },
                  splits: [],
                  tail: { kind: "none" },
                },
              ],
              afterwards: "close",
            });
            try {
              const client = await connect({ maxListingBytes });
              const call =
                command === "list"
                  ? client.list()
                  : command === "uidl"
                    ? client.uidl()
                    : client.capabilities();

              // Act
              const outcome = await withGuard(
                call.then(
                  () => "resolved",
                  (error: unknown) => error,
                ),
                CALM_GUARD_MS,
                () => "hung",
              );
              client.destroy();

              // Assess
              expect(outcome).toBeInstanceOf(ProtocolError);
              expect(String(outcome)).toContain(`larger than ${maxListingBytes} bytes`);
            } finally {
              server.dropAll();
            }
            expect((await guards.drain()).map(String)).toEqual([]);
          },
        ),
        { numRuns: runs(20) },
      );
    },
    scaledTimeout(60_000),
  );

  it("holds at most a bounded amount of an endless RETR body for a reader that stopped reading", async () => {
    // Prepare
    server.play({
      greeting: proper,
      replies: [
        {
          body: { kind: "endless", prefix: Buffer.from(`+OK${CRLF}`), line: Buffer.from(`abc${CRLF}`) },
          splits: [],
          tail: { kind: "none" },
        },
      ],
      afterwards: "close",
    });
    const client = await connect();
    try {
      const stream = client.retrieve(1, { maxBytes: 1024 * MiB });
      const firstChunk = new Promise<void>((resolve) => stream.once("readable", () => resolve()));
      stream.on("error", () => undefined);

      // Act: the reader never calls read(); wait (bounded) until the client pauses the socket.
      await firstChunk;
      const paused = await withGuard(
        (async () => {
          while (!client.receivePaused) await new Promise<void>((resolve) => setImmediate(resolve));
          return true;
        })(),
        CALM_GUARD_MS,
        () => false,
      );
      const held = stream.readableLength;
      const sentWhenPaused = server.bytesWritten;
      stream.destroy();

      // Assess: 64 KiB of stream buffer plus at most one socket chunk, whatever the server pushed.
      expect(paused).toBe(true);
      expect(held).toBeLessThanOrEqual(2 * 64 * 1024);
      expect(sentWhenPaused).toBeGreaterThan(held);
    } finally {
      client.destroy();
      server.dropAll();
    }
    expect((await guards.drain()).map(String)).toEqual([]);
  });

  it(
    "returns valid dot-stuffed bodies byte-exact however the writes are split",
    async () => {
      const bodyPiece = fc.oneof(
        fc.constantFrom(".", "..", ".\r\n", "\r\n", "\r", "\n", "\r\n.", "\n.", "\r.", "\0", "\u00ff", "x"),
        fc.string({ maxLength: 20 }),
      );
      const body = fc
        .array(bodyPiece, { maxLength: 60 })
        .map((pieces) => Buffer.from(pieces.join(""), "latin1"))
        // What a POP3 server serves always ends in CRLF (Dovecot adds one); empty stays empty.
        .map((bytes) =>
          bytes.length === 0 || bytes.subarray(-2).toString() === CRLF
            ? bytes
            : Buffer.concat([bytes, Buffer.from(CRLF)]),
        );
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(body, fc.array(fc.nat({ max: 2_000 }), { maxLength: 6 }), fc.nat({ max: 4 })), {
            minLength: 1,
            maxLength: 3,
          }),
          async (messages) => {
            // Prepare: one RETR per message, each reply split at random offsets and inside its terminator.
            server.play({
              greeting: proper,
              replies: messages.map(([bytes, splits, inTerminator]) => {
                const reply = Buffer.concat([Buffer.from(`+OK${CRLF}`), stuff(bytes)]);
                return {
                  body: { kind: "raw", bytes: reply },
                  splits: [...splits.map((s) => s % (reply.length + 1)), reply.length - 1 - inTerminator],
                  tail: { kind: "none" },
                };
              }),
              afterwards: "proper",
            });
            const received: Buffer[] = [];
            try {
              const client = await connect();

              // Act
              for (let n = 1; n <= messages.length; n++) {
                const chunks: Buffer[] = [];
                for await (const chunk of client.retrieve(n)) chunks.push(chunk as Buffer);
                received.push(Buffer.concat(chunks));
              }
              await client.quit();
            } finally {
              server.dropAll();
            }

            // Assess
            expect(received.map((b) => b.toString("latin1"))).toEqual(
              messages.map(([b]) => b.toString("latin1")),
            );
          },
        ),
        { numRuns: runs(100) },
      );
    },
    scaledTimeout(60_000),
  );
});
