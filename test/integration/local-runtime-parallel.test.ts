import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalRuntime } from "../../cli/runtime/local-runtime";
import { runForever, runOnce } from "../../cli/runtime/run-local";
import { parseLocalConfig } from "../../shared/config/local-config";
import type { SecretStore } from "../../shared/ports/secret-store";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { TestClock } from "../fakes/in-memory-clock";
import { ScriptedPop3Server, type ScriptedPop3ServerOptions } from "../fakes/scripted-pop3-server";
import { generateMailbox } from "../fixtures/awkward-messages";
import { type LocalWorld, startLocalWorld } from "./support/local-world";

/**
 * Mailboxes in parallel in the local runtime (docs/pipeline.md, "Mailboxes in parallel"): a
 * bounded pool, each mailbox one POP3 session at a time, fair between a busy and a quiet one.
 */
const oauth = { clientId: "par", clientSecret: "par-secret", refreshToken: "par-refresh" };
const GMAIL_USER = "owner@acme.example";

describe("local runtime with several mailboxes", () => {
  let dir: string;
  let google: { baseUrl: string; tokenUrl: string };
  const servers: ScriptedPop3Server[] = [];

  let world: LocalWorld | undefined;

  beforeAll(async () => {
    world = await startLocalWorld("pop2gmail-parallel-", GMAIL_USER, oauth, servers);
    ({ dir, google } = world);
  });

  afterAll(() => world?.stop());

  interface Box {
    readonly id: string;
    readonly messages: number;
    readonly deliver?: ScriptedPop3ServerOptions["deliver"];
  }

  /** Gmail endpoints, the sink's quota and the clock, for a test with a stand-in of its own. */
  interface Sink {
    readonly endpoints: { baseUrl: string; tokenUrl: string };
    readonly quotaUnitsPerMinute: number;
    readonly clock: TestClock;
  }

  async function runtimeFor(
    name: string,
    boxes: readonly Box[],
    local: Record<string, unknown> = {},
    sink: Sink = { endpoints: google, quotaUnitsPerMinute: 1_000_000, clock: new TestClock() },
  ) {
    const mailboxes = [];
    const byId = new Map<string, ScriptedPop3Server>();
    for (const [index, box] of boxes.entries()) {
      const server = new ScriptedPop3Server({
        users: { box: "right" },
        messages: generateMailbox(box.messages, 200 + index).map((m) => m.bytes),
        ...(box.deliver === undefined ? {} : { deliver: box.deliver }),
      });
      servers.push(server);
      byId.set(box.id, server);
      const { port } = await server.start();
      mailboxes.push({
        id: box.id,
        pop3: {
          host: "127.0.0.1",
          port,
          tls: "none",
          allowPlaintext: true,
          user: "box",
          passwordSecret: "pop3",
        },
        gmail: { user: GMAIL_USER, credentialsSecret: "google" },
      });
    }
    const config = parseLocalConfig(
      {
        tenant: "acme",
        google: {
          apiBaseUrl: sink.endpoints.baseUrl,
          tokenUrl: sink.endpoints.tokenUrl,
          quotaUnitsPerMinute: sink.quotaUnitsPerMinute,
        },
        local: { dataDir: join(dir, name), maxRetryWaitSeconds: 0, ...local },
        mailboxes,
      },
      dir,
    );
    const secrets: SecretStore = { get: async (n) => (n === "pop3" ? "right" : JSON.stringify(oauth)) };
    const runtime = createLocalRuntime(config, { secrets, clock: sink.clock });
    return { runtime, servers: byId };
  }

  it("copies a mailbox while another one's POP3 session hangs", async () => {
    // Prepare: the first mailbox's server stalls in its first RETR; the second one is healthy.
    const stop = new AbortController();
    const { runtime, servers: byId } = await runtimeFor("hang", [
      {
        id: "stuck@acme.example",
        messages: 2,
        deliver: (r) => (r.command === "RETR" ? { kind: "stall", afterBytes: 30 } : undefined),
      },
      {
        id: "healthy@acme.example",
        messages: 3,
        // The healthy mailbox's copy session ends: the test has seen what it needs.
        deliver: (r) => {
          if (r.command === "QUIT" && r.count >= 2) stop.abort();
          return undefined;
        },
      },
    ]);
    // A guard so a runtime that works on one mailbox at a time ends the test instead of hanging.
    const guard = setTimeout(() => stop.abort(), 20_000);

    // Act
    const summary = await runOnce(runtime, { signal: stop.signal, stopGraceMs: 0 }).finally(() => {
      clearTimeout(guard);
      return runtime.close();
    });

    // Assess
    const healthy = summary.mailboxes.find((m) => m.mailboxId === "healthy@acme.example");
    expect(healthy).toMatchObject({ copied: 3, deleted: 3 });
    expect(byId.get("healthy@acme.example")?.remainingMessages()).toHaveLength(0);
    expect(byId.get("stuck@acme.example")?.remainingMessages()).toHaveLength(2);
  });

  it("lets a quiet mailbox's mail through between a busy mailbox's batches, even with one worker", async () => {
    // Prepare: one worker for two mailboxes; the busy one has five batches of backlog.
    const { runtime } = await runtimeFor(
      "fair",
      [
        { id: "busy@acme.example", messages: 10 },
        { id: "quiet@acme.example", messages: 1 },
      ],
      { batchSize: 2, parallelMailboxes: 1 },
    );
    const order: string[] = [];
    runtime.telemetry.onEvent((event) => {
      if (event.type === "imported") order.push(event.mailboxId);
    });

    // Act
    const summary = await runOnce(runtime).finally(() => runtime.close());

    // Assess: the quiet mailbox's message went in after at most one batch of the busy one.
    expect(summary.ok).toBe(true);
    expect(order.filter((m) => m === "busy@acme.example")).toHaveLength(10);
    expect(order.indexOf("quiet@acme.example")).toBeLessThanOrEqual(2);
  });

  it("paces two mailboxes that deliver into one Gmail user with one budget", async () => {
    // Prepare: the sink paces the user at 24 imports a minute, on the test clock (no real waiting).
    const clock = new TestClock();
    const paced = new GmailApiStandIn({ now: () => clock.now() });
    const endpoints = await paced.start();
    paced.registerOAuthUser({ user: GMAIL_USER, ...oauth });
    const { runtime } = await runtimeFor(
      "one-budget",
      [
        { id: "info@acme.example", messages: 24 },
        { id: "sales@acme.example", messages: 24 },
      ],
      { maxRetryWaitSeconds: 600 },
      { endpoints, quotaUnitsPerMinute: 600, clock },
    );

    // Act
    const summary = await runOnce(runtime).finally(async () => {
      await runtime.close();
      await paced.stop();
    });

    // Assess: 48 imports at 24 a minute for both mailboxes together take two minutes; a budget
    // per mailbox would let each send 24 a minute and finish in one.
    const times = paced.messages(GMAIL_USER).map((m) => m.importedAt);
    expect(summary.ok).toBe(true);
    expect(times).toHaveLength(48);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(110_000);
  });

  it("polls every mailbox in runForever while one mailbox drains a backlog", async () => {
    // Prepare
    const stop = new AbortController();
    const { runtime } = await runtimeFor(
      "forever",
      [
        { id: "busy@acme.example", messages: 8 },
        { id: "quiet@acme.example", messages: 1 },
      ],
      { batchSize: 2, parallelMailboxes: 1 },
    );
    const order: string[] = [];
    runtime.telemetry.onEvent((event) => {
      if (event.type !== "imported") return;
      order.push(event.mailboxId);
      if (order.length === 9) stop.abort();
    });

    // Act
    await runForever(runtime, { signal: stop.signal }).finally(() => runtime.close());

    // Assess
    expect(order.indexOf("quiet@acme.example")).toBeLessThanOrEqual(2);
  });
});
