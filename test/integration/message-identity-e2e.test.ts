import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { markExistingDelivered } from "../../cli/commands/mark-existing";
import { runOnce } from "../../cli/runtime/run-local";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { generateMailbox } from "../fixtures/awkward-messages";
import { inProcessRuntime } from "./support/in-process-runtime";

/**
 * Message identity end to end (docs/pipeline.md "Message identity"): the local runtime (SQLite
 * ledger, file archive, our POP3 client, the Gmail API stand-in) against a scripted POP3 server
 * that lists one UIDL for two messages (popa3d, issue 11 item 3) and ids RFC 1939 §7 forbids
 * (issue 10 item 9), with mail beside them that must keep flowing.
 */
const oauth = { clientId: "mi", clientSecret: "mi-secret", refreshToken: "mi-refresh" };
const USER = "owner@acme.example";

describe("message identity through the local runtime", () => {
  let dir: string;
  let gmail: GmailApiStandIn;
  let google: { baseUrl: string; tokenUrl: string };
  const servers: ScriptedPop3Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-identity-"));
    gmail = new GmailApiStandIn();
    google = await gmail.start();
    gmail.registerOAuthUser({ user: USER, ...oauth });
  });

  afterAll(async () => {
    for (const server of servers) await server.stop();
    await gmail?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function runtimeFor(name: string, messages: Buffer[], uidls: string[]) {
    const deles: string[] = [];
    const server = new ScriptedPop3Server({
      users: { box: "right" },
      messages,
      uidls,
      deliver: (context) => {
        if (context.command === "DELE") deles.push(context.argument);
        return undefined;
      },
    });
    servers.push(server);
    const { port } = await server.start();
    const { runtime, key } = inProcessRuntime({
      dir,
      name,
      port,
      google,
      gmailUser: USER,
      pop3User: "box",
      pop3Password: "right",
      oauth,
    });
    return { runtime, server, deles, key };
  }

  function copiesInGmail(bytes: Buffer): number {
    return gmail.messages(USER).filter((m) => m.raw.equals(bytes)).length;
  }

  it("delivers both messages popa3d lists under one UIDL, and deletes each exactly once", async () => {
    // Prepare
    const [a, beside, b] = generateMailbox(3, 1103).map((m) => Buffer.from(m.bytes));
    if (a === undefined || b === undefined || beside === undefined) throw new Error("corpus");
    const { runtime, server, deles } = await runtimeFor("popa3d", [a, beside, b], ["dup", "ok-1", "dup"]);

    // Act
    const first = await runOnce(runtime);
    const second = await runOnce(runtime).finally(() => runtime.close());

    // Assess
    expect(first.ok).toBe(true);
    expect(second.ok).toBe(true);
    expect(copiesInGmail(a)).toBe(1);
    expect(copiesInGmail(b)).toBe(1);
    expect(copiesInGmail(beside)).toBe(1);
    expect(server.remainingMessages()).toEqual([]);
    expect(server.committedDeletions).toBe(3);
    expect([...deles].sort()).toEqual(["1", "2", "3"]);
  });

  it("marks both twins of a UIDL listed twice as already delivered (init --mark-existing), so neither is imported", async () => {
    // Prepare
    const [a, b, later] = generateMailbox(3, 1117).map((m) => Buffer.from(m.bytes));
    if (a === undefined || b === undefined || later === undefined) throw new Error("corpus");
    const { runtime, server } = await runtimeFor("marked", [a, b], ["dup", "dup"]);
    const mailbox = runtime.config.mailboxes[0];
    if (mailbox === undefined) throw new Error("config");

    // Act
    const marked = await markExistingDelivered(runtime, mailbox);
    const summary = await runOnce(runtime).finally(() => runtime.close());

    // Assess
    expect(marked).toEqual({ onServer: 2, marked: 2 });
    expect(summary.mailboxes[0]).toMatchObject({ newMessages: 0, copied: 0, deleted: 0 });
    expect(copiesInGmail(a) + copiesInGmail(b)).toBe(0);
    expect(server.remainingMessages()).toEqual([a, b]);
  });

  it("quarantines messages with a 71- and a 5,000-character UIDL (archived, left on the server) and delivers the rest", async () => {
    // Prepare
    const [long, huge, good] = generateMailbox(3, 1009).map((m) => Buffer.from(m.bytes));
    if (long === undefined || huge === undefined || good === undefined) throw new Error("corpus");
    const { runtime, server, key } = await runtimeFor(
      "invalid",
      [long, huge, good],
      ["u".repeat(71), "v".repeat(5000), "fine"],
    );

    // Act
    const summary = await runOnce(runtime);
    const quarantined = await runtime.ledger.listByState(key, ["quarantined"]);
    await runtime.close();

    // Assess
    expect(summary.mailboxes[0]).toMatchObject({ copied: 1, quarantined: 2 });
    expect(copiesInGmail(good)).toBe(1);
    expect(copiesInGmail(long) + copiesInGmail(huge)).toBe(0);
    expect(quarantined.map((e) => [e.quarantineCode, e.archivedSize]).sort()).toEqual(
      [
        ["INVALID_UIDL", long.length],
        ["INVALID_UIDL", huge.length],
      ].sort(),
    );
    expect(quarantined.every((e) => e.uidl.length < 100)).toBe(true);
    expect(server.remainingMessages()).toEqual([long, huge]);
  });
});
