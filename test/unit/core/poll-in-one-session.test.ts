import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../shared/core/errors";
import { pollInOneSession } from "../../../shared/core/poll-in-one-session";
import type { Pop3Source } from "../../../shared/ports/pop3-source";
import { Harness, makeMessage, TENANT } from "./support/harness";

/** The harness's maildrop, as a server that announces `LOGIN-DELAY <seconds>` after login. */
function announcingLoginDelay(h: Harness, seconds: number): Pop3Source {
  return {
    open: async (mailbox) =>
      Object.assign(await h.pop3.open(mailbox), {
        capabilities: { utf8: false, loginDelaySeconds: seconds },
      }),
  };
}

describe("pollInOneSession", () => {
  it("lists and enqueues in one session when the server announces no login delay", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.add(makeMessage());
    h.pop3.add(makeMessage());
    // Act
    const poll = await pollInOneSession(h.deps, TENANT, h.mailbox);
    // Assess
    expect(poll).toMatchObject({ kind: "listed", listed: { newMessages: 2 } });
    expect(poll.kind === "listed" && poll.inSession).toBeUndefined();
    expect(h.pop3.sessionsOpened).toBe(1);
    expect(h.queue.size).toBe(2);
  });

  it("copies, deletes and enqueues nothing in the one session of a LOGIN-DELAY server", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.add(makeMessage());
    h.pop3.add(makeMessage());
    // Act
    const poll = await pollInOneSession({ ...h.deps, pop3: announcingLoginDelay(h, 60) }, TENANT, h.mailbox);
    // Assess
    expect(poll).toMatchObject({ kind: "listed", loginDelayMs: 60_000, inSession: { deleted: 2 } });
    expect(h.pop3.sessionsOpened).toBe(1);
    expect(h.queue.size).toBe(0);
    expect(h.sink.imported).toHaveLength(2);
    expect(h.pop3.uidls()).toEqual([]);
    expect(h.earlyDeletes).toEqual([]);
  });

  it("fails with a ConfigError naming the delay when the process cannot copy, and deletes nothing", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.add(makeMessage());
    const { archive: _archive, sink: _sink, ...listerOnly } = h.deps;
    // Act
    const poll = pollInOneSession({ ...listerOnly, pop3: announcingLoginDelay(h, 60) }, TENANT, h.mailbox);
    // Assess
    await expect(poll).rejects.toThrow(ConfigError);
    await expect(poll).rejects.toThrow(/LOGIN-DELAY 60/);
    expect(h.pop3.uidls()).toHaveLength(1);
  });
});
