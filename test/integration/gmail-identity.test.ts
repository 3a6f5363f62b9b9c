import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GmailMailSink } from "../../shared/adapters/gmail/gmail-mail-sink";
import { GMAIL_SCOPES, GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { MapSecretStore } from "../fakes/gmail-sink-fixture";
import { seededRandom } from "../fakes/seeded-random";
import { Harness, makeMessage } from "../unit/core/support/harness";

/**
 * Issue 10 items 1, 2 and 10 (Gmail part) through the real googleapis client against the Gmail
 * API stand-in: the core with in-memory POP3, archive and ledger, and the real `GmailMailSink`.
 * Proof of an import is our own `X-Pop2Gmail-Id` on the Gmail message, never a shared Message-ID.
 */

const SHARED_ID = "<resent@sender.example>";
const isImport = (r: { operation: string }) => r.operation === "import" || r.operation === "upload-session";

describe("the Gmail copy's identity through the real Gmail client", () => {
  let h: Harness;
  let standIn: GmailApiStandIn;
  let secrets: MapSecretStore;
  let urls: { baseUrl: string; tokenUrl: string };

  beforeEach(async () => {
    h = new Harness();
    standIn = new GmailApiStandIn({ now: () => h.clock.now() });
    urls = await standIn.start();
    secrets = new MapSecretStore();
  });
  afterEach(async () => {
    await standIn.stop();
  });

  /** Wires a real sink into the harness, for a user granted `scopes`. */
  function useGmail(
    scopes: readonly string[],
    extra: Partial<ConstructorParameters<typeof GmailMailSink>[0]> = {},
  ): GmailMailSink {
    standIn.registerOAuthUser({
      user: h.mailbox.gmail.user,
      clientId: "client-1",
      clientSecret: "secret-1",
      refreshToken: "refresh-1",
      scopes,
    });
    secrets.set(
      h.mailbox.gmail.credentialsSecret,
      JSON.stringify({ clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-1" }),
    );
    const sink = new GmailMailSink({
      secrets,
      google: {
        apiBaseUrl: urls.baseUrl,
        tokenUrl: urls.tokenUrl,
        quotaUnitsPerMinute: 1_000_000,
        maxConcurrentImports: 4,
      },
      clock: h.clock,
      random: seededRandom(5),
      ...extra,
    });
    Object.assign(h.deps, { sink });
    return sink;
  }

  const inGmail = (bytes: Uint8Array) =>
    standIn.messages(h.mailbox.gmail.user).filter((m) => m.raw.equals(Buffer.from(bytes)));
  const entryOf = (uidl: string) => h.store.get({ ...h.key, uidl });
  const withReadScope = [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly];

  it("keeps the second of two messages sharing a Message-ID after its import met one 503", async () => {
    // Prepare: the first is in Gmail; the second's first import is refused with a 503.
    useGmail(withReadScope);
    const firstBytes = makeMessage({ messageId: SHARED_ID });
    const first = h.pop3.add(firstBytes);
    await h.runUntilQuiet();
    const secondBytes = makeMessage({ messageId: SHARED_ID });
    const second = h.pop3.add(secondBytes);
    standIn.injectFault({ match: isImport, times: 1, action: { kind: "status", status: 503 } });

    // Act
    await h.runUntilQuiet();

    // Assess: both are in Gmail once, each under its own id, before they left POP3.
    const [one, two] = [await entryOf(first), await entryOf(second)];
    expect(inGmail(firstBytes).map((m) => m.id)).toEqual([one?.gmailId]);
    expect(inGmail(secondBytes).map((m) => m.id)).toEqual([two?.gmailId]);
    expect(two?.gmailId).not.toBe(one?.gmailId);
    expect(two?.state).toBe("deleted");
    expect(standIn.countStatus(503)).toBe(1);
    expect(standIn.countStatus(200, "messages.get")).toBeGreaterThan(0);
  });

  it("settles a lost answer on a message without Message-ID by its trace id: one copy, imported once", async () => {
    // Prepare: the import is stored, then answered 500.
    useGmail(withReadScope);
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    standIn.injectFault({
      match: isImport,
      times: 1,
      action: { kind: "status", status: 500, afterStore: true },
    });

    // Act
    await h.runUntilQuiet();

    // Assess: the copy carries our trace line and a synthesized Message-ID; the archive does not.
    const copies = inGmail(bytes);
    expect(copies).toHaveLength(1);
    expect(standIn.rawImports()).toHaveLength(1);
    expect((await entryOf(uidl))?.state).toBe("deleted");
    expect(copies[0]?.received.toString("latin1")).toMatch(
      /^X-Pop2Gmail-Id: [0-9a-f]{32}\r\nMessage-ID: <[0-9a-f]{32}@pop2gmail\.invalid>\r\nReceived: /,
    );
    expect(copies[0]?.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("without a read scope re-imports the same copy after a lost answer, and it is merged", async () => {
    // Prepare
    useGmail([GMAIL_SCOPES.insert, GMAIL_SCOPES.labels]);
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    standIn.injectFault({
      match: isImport,
      times: 1,
      action: { kind: "status", status: 500, afterStore: true },
    });

    // Act
    await h.runUntilQuiet();

    // Assess
    expect(inGmail(bytes)).toHaveLength(1);
    expect(standIn.rawImports().map((r) => r.merged)).toEqual([false, true]);
    expect((await entryOf(uidl))?.state).toBe("deleted");
  });

  it("times a stalled import out once, as an uncertain failure, and releases the POP3 session", async () => {
    // Prepare: a small per-request timeout stands for the default 120 s.
    useGmail(withReadScope, { requestTimeoutMs: 300, maxAttempts: 5 });
    const bytes = makeMessage();
    const uidl = h.pop3.add(bytes);
    standIn.injectFault({ match: isImport, times: 1, action: { kind: "stall" } });
    await h.poll();

    // Act
    const batch = await h.copyVisible();
    const importsDuringBatch = standIn.requestLog().filter((e) => isImport(e.request)).length;
    const sessionAfterBatch = await h.pop3.open(h.mailbox).then((s) => s.quit());
    await h.runUntilQuiet();

    // Assess: one request, not five; the session was given back; the retry delivered it once.
    expect(batch?.outcomes).toMatchObject([{ kind: "retry-later", error: { code: "TIMEOUT" } }]);
    expect(importsDuringBatch).toBe(1);
    expect(sessionAfterBatch).toEqual({ committed: true });
    expect(inGmail(bytes)).toHaveLength(1);
    expect((await entryOf(uidl))?.state).toBe("deleted");
  });

  it("gives a request carrying a body more time by its size, at the configured slowest rate", () => {
    // Prepare
    const sink = useGmail(withReadScope, { requestTimeoutMs: 120_000, minUploadBytesPerSecond: 256 * 1024 });

    // Act
    const small = sink.timeoutFor(0);
    const big = sink.timeoutFor(35 * 1024 * 1024);

    // Assess: 120 s, and 35 MiB at 256 KiB/s is 140 s more.
    expect(small).toBe(120_000);
    expect(big).toBe(260_000);
  });

  it("takes the request timeout and the slowest upload rate from the tenant's google config", () => {
    // Prepare
    const sink = new GmailMailSink({
      secrets,
      google: {
        apiBaseUrl: urls.baseUrl,
        tokenUrl: urls.tokenUrl,
        quotaUnitsPerMinute: 6000,
        maxConcurrentImports: 4,
        requestTimeoutSeconds: 60,
        minUploadKiBPerSecond: 1024,
      },
    });

    // Act
    const timeouts = [sink.timeoutFor(0), sink.timeoutFor(8 * 1024 * 1024)];

    // Assess
    expect(timeouts).toEqual([60_000, 68_000]);
  });
});
