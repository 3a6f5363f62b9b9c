import { describe, expect, it } from "vitest";
import { CredentialsError, MailboxBusyError } from "../../../shared/core/errors";
import { withMailboxSession } from "../../../shared/core/mailbox-session";
import { Harness, mailboxConfig } from "./support/harness";

describe("withMailboxSession", () => {
  it("turns [LOGIN-DELAY] into busy and gives the lease back", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.failNextOpen(new MailboxBusyError("LOGIN-DELAY", "-ERR [LOGIN-DELAY] wait"));

    // Act
    const outcome = await withMailboxSession(h.deps, h.key, h.mailbox, async () => "never runs");

    // Assess
    expect(outcome).toEqual({ kind: "busy", reason: "LOGIN-DELAY" });
    expect(h.telemetry.ofType("busy")).toMatchObject([{ reason: "LOGIN-DELAY", mailboxId: h.mailbox.id }]);
    expect(h.leases.heldCount(h.key)).toBe(0);
  });

  it("reports broken POP3 credentials once and rethrows", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.failNextOpen(new CredentialsError("pop3", "-ERR [AUTH] bad login", { responseCode: "AUTH" }));

    // Act
    const act = withMailboxSession(h.deps, h.key, h.mailbox, async () => 1);

    // Assess
    await expect(act).rejects.toBeInstanceOf(CredentialsError);
    expect(h.telemetry.ofType("credentials-broken")).toMatchObject([{ service: "pop3" }]);
    expect(h.leases.heldCount(h.key)).toBe(0);
  });

  it("lets maxSessions sessions run at once and answers busy to one more", async () => {
    // Prepare
    const h = new Harness(
      mailboxConfig({ pop3: { host: "h", user: "u", passwordSecret: "s", maxSessions: 2 } }),
    );
    h.pop3.lockSessions = false;
    const inner: unknown[] = [];

    // Act
    const outer = await withMailboxSession(h.deps, h.key, h.mailbox, async () => {
      inner.push(
        await withMailboxSession(h.deps, h.key, h.mailbox, async () =>
          withMailboxSession(h.deps, h.key, h.mailbox, async () => "third"),
        ),
      );
      return "first";
    });

    // Assess
    expect(outer).toEqual({ kind: "done", value: "first", committed: true });
    expect(inner).toEqual([{ kind: "done", value: { kind: "busy", reason: "no-lease" }, committed: true }]);
    expect(h.pop3.sessionsOpened).toBe(2);
  });
});
