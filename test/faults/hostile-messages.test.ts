import { createHash } from "node:crypto";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { GmailMailSink } from "../../shared/adapters/gmail/gmail-mail-sink";
import { Pop3MailboxSource } from "../../shared/adapters/pop3/pop3-mailbox-source";
import { MessageRejectedError } from "../../shared/core/errors";
import { GMAIL_SCOPES, GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { MapSecretStore } from "../fakes/gmail-sink-fixture";
import { FakeMailSink } from "../fakes/in-memory-mail-sink";
import { InMemoryPop3Source } from "../fakes/in-memory-pop3-source";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { withoutTraceLines } from "./campaign/campaign-corpus";
import { runs } from "./support/faults-scale";
import {
  type FaultMessage,
  hostileMessageSet,
  MAX_MESSAGE_BYTES,
  servedBytes,
} from "./support/hostile-message-set";
import { faultMailbox, PipelineRig } from "./support/pipeline-rig";

const GMAIL_USER = "info.acme@gmail.com";

/** What became of each message, read from the ledger, the archive, POP3 and Gmail. */
interface Fate {
  readonly name: string;
  readonly state: string | undefined;
  readonly quarantineCode: string | undefined;
  readonly hasReason: boolean;
  readonly archivedByteExact: boolean;
  readonly onPop3: boolean;
}

describe("hostile messages through the pipeline core", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function fatesOf(
    rig: PipelineRig,
    set: readonly FaultMessage[],
    uidls: readonly string[],
    onServer: readonly string[],
    served: (m: FaultMessage) => Buffer,
  ): Promise<Fate[]> {
    return Promise.all(
      set.map(async (message, i) => {
        const uidl = uidls[i] ?? "";
        const entry = await rig.entry(uidl);
        const archived = rig.archived(uidl);
        return {
          name: message.name,
          state: entry?.state,
          quarantineCode: entry?.quarantineCode,
          hasReason: (entry?.quarantineReason ?? "").length > 0,
          archivedByteExact: archived?.equals(served(message)) ?? false,
          onPop3: onServer.includes(uidl),
        };
      }),
    );
  }

  function expectedFates(set: readonly FaultMessage[]): Fate[] {
    return set.map((m) => ({
      name: m.name,
      state: m.fate.kind === "delivered" ? "deleted" : "quarantined",
      quarantineCode: m.fate.kind === "quarantined" ? m.fate.code : undefined,
      hasReason: m.fate.kind === "quarantined",
      archivedByteExact: true,
      // Never lost: what is not delivered stays on the server.
      onPop3: m.fate.kind === "quarantined",
    }));
  }

  it("archives each byte-exact, delivers or quarantines it with a reason, and never blocks the normal ones", async () => {
    // Prepare
    const set = hostileMessageSet();
    const pop3 = new InMemoryPop3Source();
    pop3.chunkSize = 4_093;
    const uidls = set.map((m) => pop3.add(new Uint8Array(m.bytes)));
    const rejected = new Set(set.flatMap((m, i) => (m.gmailRejects ? [uidls[i]] : [])));
    const sink = new FakeMailSink();
    sink.rejectWhen((request) =>
      rejected.has(request.uidl)
        ? new MessageRejectedError("Invalid From header (400 invalidArgument)")
        : undefined,
    );
    const rig = new PipelineRig(faultMailbox({ maxMessageBytes: MAX_MESSAGE_BYTES }), pop3, sink);
    const deletedBeforeSafe: string[] = [];
    pop3.onCommit = (committed) => {
      for (const uidl of committed) {
        if (rig.archived(uidl) === undefined || sink.countFor(uidl) === 0) deletedBeforeSafe.push(uidl);
      }
    };

    // Act: one pass, no time passing, so nothing may need a retry.
    const pass = await rig.onePass();

    // Assess
    expect(pass.outcomes.map((o) => o.kind).filter((k) => k !== "copied" && k !== "quarantined")).toEqual([]);
    expect(await fatesOf(rig, set, uidls, pop3.uidls(), (m) => m.bytes)).toEqual(expectedFates(set));
    expect(deletedBeforeSafe).toEqual([]);
    for (const [i, message] of set.entries()) {
      const inGmail = sink.imported.filter((g) => g.uidl === uidls[i]);
      expect(inGmail.length, message.name).toBe(message.fate.kind === "delivered" ? 1 : 0);
      for (const copy of inGmail)
        expect(Buffer.from(copy.bytes).equals(message.bytes), message.name).toBe(true);
    }
    const quarantinedEvents = rig.telemetry.ofType("quarantined").map((e) => e.code);
    expect(quarantinedEvents.sort()).toEqual(["MESSAGE_REJECTED", "MESSAGE_TOO_LARGE"]);
  });

  it("leaves the quarantined ones archived and on the server through later polls", async () => {
    // Prepare
    const set = hostileMessageSet();
    const pop3 = new InMemoryPop3Source();
    const uidls = set.map((m) => pop3.add(new Uint8Array(m.bytes)));
    const sink = new FakeMailSink();
    const rejectedUidl = uidls[set.findIndex((m) => m.gmailRejects)];
    sink.rejectWhen((request) =>
      request.uidl === rejectedUidl ? new MessageRejectedError("Invalid From header") : undefined,
    );
    const rig = new PipelineRig(faultMailbox({ maxMessageBytes: MAX_MESSAGE_BYTES }), pop3, sink);
    await rig.onePass();
    const importsAfterFirstPass = sink.importCalls;

    // Act: three more passes, an hour apart.
    for (let pass = 0; pass < 3; pass++) {
      rig.clock.advance(60 * 60_000);
      await rig.onePass();
    }

    // Assess
    expect(await fatesOf(rig, set, uidls, pop3.uidls(), (m) => m.bytes)).toEqual(expectedFates(set));
    expect(sink.importCalls).toBe(importsAfterFirstPass);
  });

  it("archives and delivers byte-exact any bytes at all, between normal messages, in one pass", async () => {
    const messageBytes = fc
      .array(
        fc.oneof(
          fc.constantFrom("\r\n", "\n", "\r", ".", "\r\n.\r\n", "\0", "\xff", ":", "From: x\r\n", "\r\n\r\n"),
          fc.string({ maxLength: 40 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("latin1")),
        ),
        { maxLength: 30 },
      )
      .map((parts) => Buffer.from(parts.join(""), "latin1"));
    await fc.assert(
      fc.asyncProperty(fc.array(messageBytes, { minLength: 1, maxLength: 4 }), async (randomMessages) => {
        // Prepare
        const set = hostileMessageSet().filter((m) => m.name.startsWith("normal-"));
        const pop3 = new InMemoryPop3Source();
        const served: Buffer[] = [];
        const uidls: string[] = [];
        set.forEach((normal, i) => {
          uidls.push(pop3.add(new Uint8Array(normal.bytes)));
          served.push(normal.bytes);
          const random = randomMessages[i];
          if (random !== undefined) {
            uidls.push(pop3.add(new Uint8Array(random)));
            served.push(random);
          }
        });
        const sink = new FakeMailSink();
        const rig = new PipelineRig(faultMailbox(), pop3, sink);

        // Act
        await rig.onePass();

        // Assess
        const states = await Promise.all(uidls.map(async (uidl) => (await rig.entry(uidl))?.state));
        expect(states).toEqual(uidls.map(() => "deleted"));
        expect(pop3.uidls()).toEqual([]);
        for (const [i, uidl] of uidls.entries()) {
          expect(rig.archived(uidl)?.equals(served[i] ?? Buffer.alloc(0))).toBe(true);
          const copies = sink.imported.filter((g) => g.uidl === uidl);
          expect(copies.map((c) => Buffer.from(c.bytes).equals(served[i] ?? Buffer.alloc(0)))).toEqual([
            true,
          ]);
        }
      }),
      { numRuns: runs(30) },
    );
  });

  it("stores in Gmail, through the real POP3 client and GmailMailSink, exactly the archived bytes", async () => {
    // Prepare: the same set on a scripted POP3 server, Gmail behind its API stand-in.
    const set = hostileMessageSet();
    const server = new ScriptedPop3Server({
      users: { alice: "pop-password" },
      messages: set.map((m) => m.bytes),
    });
    const { port } = await server.start();
    cleanups.push(() => server.stop());
    const standIn = new GmailApiStandIn();
    const urls = await standIn.start();
    cleanups.push(() => standIn.stop());
    standIn.registerOAuthUser({
      user: GMAIL_USER,
      clientId: "client-1",
      clientSecret: "secret-1",
      refreshToken: "refresh-1",
      scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
    });
    const secrets = new MapSecretStore();
    secrets.set("pop-secret", "pop-password");
    secrets.set(
      "google-secret",
      JSON.stringify({ clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-1" }),
    );
    // Imports arrive in server order, skipping the one quarantined before import for its size.
    const imported = set.filter((m) => m.fate.kind === "delivered" || m.gmailRejects);
    const rejectAt = imported.findIndex((m) => m.gmailRejects) + 1;
    let imports = 0;
    standIn.injectFault({
      match: (request) => request.operation === "import" && ++imports === rejectAt,
      times: 1,
      action: { kind: "status", status: 400, reason: "invalidArgument", message: "Invalid From header" },
    });
    const mailbox = faultMailbox({
      maxMessageBytes: MAX_MESSAGE_BYTES,
      pop3: {
        host: "127.0.0.1",
        port,
        tls: "none",
        allowPlaintext: true,
        user: "alice",
        passwordSecret: "pop-secret",
      },
      gmail: { user: GMAIL_USER, credentialsSecret: "google-secret" },
    });
    const pop3 = new Pop3MailboxSource({ secrets, connectOptions: { commandTimeoutMs: 20_000 } });
    const sink = new GmailMailSink({
      secrets,
      google: {
        apiBaseUrl: urls.baseUrl,
        tokenUrl: urls.tokenUrl,
        quotaUnitsPerMinute: 1_000_000,
        maxConcurrentImports: 4,
      },
      maxAttempts: 2,
      backoff: { baseDelayMs: 1, maxDelayMs: 1 },
    });
    const rig = new PipelineRig(mailbox, pop3, sink);

    // Act
    await rig.onePass();

    // Assess
    // The scripted server's UIDL of a message is the first 32 hex digits of its SHA-256.
    const uidlOf = set.map((m) => createHash("sha256").update(m.bytes).digest("hex").slice(0, 32));
    const remaining = new Set(server.remainingMessages().map((b) => b.toString("latin1")));
    const onServer = set.flatMap((m, i) =>
      remaining.has(m.bytes.toString("latin1")) ? [uidlOf[i] ?? ""] : [],
    );
    expect(await fatesOf(rig, set, uidlOf, onServer, (m) => servedBytes(m.bytes))).toEqual(
      expectedFates(set),
    );
    expect(standIn.countStatus(400, "import")).toBe(1);
    const stored = new Map(standIn.messages(GMAIL_USER).map((m) => [m.id, m.raw]));
    expect(stored.size).toBe(set.filter((m) => m.fate.kind === "delivered").length);
    for (const [i, message] of set.entries()) {
      const entry = await rig.entry(uidlOf[i] ?? "");
      if (message.fate.kind !== "delivered") {
        expect(entry?.gmailId, message.name).toBeUndefined();
        continue;
      }
      // The Gmail copy is the archived bytes behind the trace lines pop2gmail prepends (docs/pipeline.md).
      const raw = stored.get(entry?.gmailId ?? "");
      const copy = raw === undefined ? undefined : withoutTraceLines(raw);
      expect(copy?.equals(rig.archived(uidlOf[i] ?? "") ?? Buffer.alloc(0)), message.name).toBe(true);
    }
  });
});
