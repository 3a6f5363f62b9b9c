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

  it("leaves a short login delay to a copier that waits it out, when the poller would have to load the copier's ports", async () => {
    // Prepare: Courier's advisory LOGIN-DELAY 10 at pollSeconds 60, in the list-new-messages function.
    const h = new Harness();
    h.pop3.add(makeMessage());
    const { archive: _archive, sink: _sink, ...listerOnly } = h.deps;
    let portsBuilt = 0;
    const copyPorts = () => {
      portsBuilt += 1;
      return { archive: h.archive, sink: h.sink };
    };
    const start = h.clock.now();
    // Act
    const poll = await pollInOneSession(
      { ...listerOnly, copyPorts, pop3: announcingLoginDelay(h, 10) },
      TENANT,
      h.mailbox,
    );
    // Assess
    expect(poll).toMatchObject({ kind: "listed", loginDelayMs: 10_000, listed: { newMessages: 1 } });
    expect(poll.kind === "listed" && poll.inSession).toBeUndefined();
    expect(portsBuilt).toBe(0);
    expect(h.queue.nextVisibleAt()).toBe(start + 10_000);
  });

  it("builds the copier's ports and copies in its session when the delay leaves no room between polls", async () => {
    // Prepare: Cyrus's LOGIN-DELAY 60 at pollSeconds 60, in the list-new-messages function.
    const h = new Harness();
    h.pop3.add(makeMessage());
    const { archive: _archive, sink: _sink, ...listerOnly } = h.deps;
    const copyPorts = async () => ({ archive: h.archive, sink: h.sink });
    // Act
    const poll = await pollInOneSession(
      { ...listerOnly, copyPorts, pop3: announcingLoginDelay(h, 60) },
      TENANT,
      h.mailbox,
    );
    // Assess
    expect(poll).toMatchObject({ kind: "listed", inSession: { deleted: 1 } });
    expect(h.queue.size).toBe(0);
    expect(h.sink.imported).toHaveLength(1);
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
