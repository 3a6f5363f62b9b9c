import { describe, expect, it } from "vitest";
import { MailboxBusyError } from "../../../shared/core/errors";
import { pollRepeatedly } from "../../../shared/core/poll-repeatedly";
import type { Pop3Source } from "../../../shared/ports/pop3-source";
import { Harness, mailboxConfig, makeMessage, TENANT } from "./support/harness";

describe("pollRepeatedly (mutation survivors)", () => {
  it("reports a busy poll as busy and polls again after pollSeconds", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ pollSeconds: 10 }));
    const start = h.clock.now();
    h.pop3.failNextOpen(new MailboxBusyError("IN-USE", "-ERR [IN-USE] locked"));
    const seen: number[] = [];
    // Act
    const results = await pollRepeatedly(h.deps, TENANT, h.mailbox, {
      untilMs: start + 15_000,
      onPoll: () => void seen.push(h.clock.now() - start),
    });
    // Assess
    expect(results.map((r) => r.kind)).toEqual(["busy", "listed"]);
    expect(seen).toEqual([0, 10_000]);
  });

  it("waits the server's login delay when it is longer than pollSeconds", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ pollSeconds: 10 }));
    const start = h.clock.now();
    h.pop3.add(makeMessage());
    const source: Pop3Source = {
      open: async (mailbox) =>
        Object.assign(await h.pop3.open(mailbox), { capabilities: { utf8: false, loginDelaySeconds: 30 } }),
    };
    const seen: number[] = [];
    // Act
    await pollRepeatedly({ ...h.deps, pop3: source }, TENANT, h.mailbox, {
      untilMs: start + 70_000,
      onPoll: () => void seen.push(h.clock.now() - start),
    });
    // Assess
    expect(seen).toEqual([0, 30_000, 60_000]);
  });

  it("starts a poll slower than the interval's successor at once, without a zero sleep", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ pollSeconds: 10 }));
    const start = h.clock.now();
    // Act
    await pollRepeatedly(h.deps, TENANT, h.mailbox, {
      untilMs: start + 25_000,
      onPoll: async () => {
        if (h.clock.now() === start) await h.clock.sleep(12_000);
      },
    });
    // Assess
    expect(h.clock.sleeps).toEqual([12_000, 10_000]);
  });
});
