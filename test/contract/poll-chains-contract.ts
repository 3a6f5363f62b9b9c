import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { PollChains } from "../../shared/ports/poll-chains";

const T0 = 1_700_000_000_000;

/**
 * The behaviour every `PollChains` must show (docs/pipeline.md "Poll chains"): the in-memory one
 * the handler tests use and `DynamoDbPollChains` on dynalite. Each test uses its own tenant.
 */
export function describePollChainsContract(
  name: string,
  makeChains: () => PollChains | Promise<PollChains>,
): void {
  describe(`PollChains contract: ${name}`, () => {
    const tenant = () => `t${randomUUID().slice(0, 8)}`;

    it("starts a chain once: a second start that saw no item loses, and list returns it", async () => {
      // Prepare
      const chains = await makeChains();
      const t = tenant();
      // Act
      const first = await chains.start(t, "a@x.it", "c1", T0, undefined);
      const second = await chains.start(t, "a@x.it", "c2", T0, undefined);
      const listed = await chains.list(t);
      // Assess
      expect([first, second]).toEqual([true, false]);
      expect(listed).toEqual([
        { mailboxId: "a@x.it", chain: "c1", seq: 0, nextPollAt: T0, firstStartedAt: T0 },
      ]);
      expect(await chains.list(tenant())).toEqual([]);
    });

    it("starts a chain due later when asked, counting its first start from now", async () => {
      // Prepare
      const chains = await makeChains();
      const t = tenant();
      // Act
      await chains.start(t, "a@x.it", "c1", T0, undefined, T0 + 7_000);
      // Assess
      expect(await chains.list(t)).toEqual([
        { mailboxId: "a@x.it", chain: "c1", seq: 0, nextPollAt: T0 + 7_000, firstStartedAt: T0 },
      ]);
    });

    it("lets the live message take the chain once, and neither a duplicate nor a stale seq nor another chain", async () => {
      // Prepare
      const chains = await makeChains();
      const t = tenant();
      await chains.start(t, "a@x.it", "c1", T0, undefined);
      // Act
      const taken = await chains.take(t, { mailboxId: "a@x.it", chain: "c1", seq: 0 }, T0, T0 + 60_000);
      const duplicate = await chains.take(
        t,
        { mailboxId: "a@x.it", chain: "c1", seq: 0 },
        T0 + 1,
        T0 + 60_001,
      );
      const otherChain = await chains.take(t, { mailboxId: "a@x.it", chain: "c0", seq: 0 }, T0, T0 + 60_000);
      const laterSeq = await chains.take(t, { mailboxId: "a@x.it", chain: "c1", seq: 1 }, T0, T0 + 60_000);
      const noItem = await chains.take(t, { mailboxId: "b@x.it", chain: "c1", seq: 0 }, T0, T0 + 60_000);
      // Assess
      expect(taken).toMatchObject({ chain: "c1", seq: 0, pollUntil: T0 + 60_000 });
      expect([duplicate, otherChain, laterSeq, noItem]).toEqual([undefined, undefined, undefined, undefined]);
    });

    it("finishes a poll: seq + 1, the outcome kept, and the old seq is stale afterwards", async () => {
      // Prepare
      const chains = await makeChains();
      const t = tenant();
      const m0 = { mailboxId: "a@x.it", chain: "c1", seq: 0 };
      await chains.start(t, "a@x.it", "c1", T0, undefined);
      await chains.take(t, m0, T0, T0 + 60_000);
      // Act
      const done = await chains.finish(t, m0, T0 + 60_000, { at: T0 + 2_000, nextPollAt: T0 + 12_000 });
      const again = await chains.take(t, m0, T0 + 3_000, T0 + 63_000);
      const m1 = { ...m0, seq: 1 };
      await chains.take(t, m1, T0 + 12_000, T0 + 72_000);
      const failed = await chains.finish(t, m1, T0 + 72_000, {
        at: T0 + 13_000,
        nextPollAt: T0 + 23_000,
        failure: { kind: "credentials", code: "AUTH" },
      });
      // Assess
      expect([done, again, failed]).toEqual([true, undefined, true]);
      expect(await chains.list(t)).toEqual([
        {
          mailboxId: "a@x.it",
          chain: "c1",
          seq: 2,
          nextPollAt: T0 + 23_000,
          firstStartedAt: T0,
          lastSucceededAt: T0 + 2_000,
          lastPolledAt: T0 + 13_000,
          lastFailure: "credentials",
          lastFailureCode: "AUTH",
        },
      ]);
    });

    it("lets a redelivered message take the chain again only after the dead poll's pollUntil", async () => {
      // Prepare
      const chains = await makeChains();
      const t = tenant();
      const m0 = { mailboxId: "a@x.it", chain: "c1", seq: 0 };
      await chains.start(t, "a@x.it", "c1", T0, undefined);
      await chains.take(t, m0, T0, T0 + 60_000);
      // Act
      const early = await chains.take(t, m0, T0 + 60_000, T0 + 120_000);
      const late = await chains.take(t, m0, T0 + 60_001, T0 + 120_001);
      const deadFinish = await chains.finish(t, m0, T0 + 60_000, {
        at: T0 + 61_000,
        nextPollAt: T0 + 71_000,
      });
      // Assess
      expect(early).toBeUndefined();
      expect(late).toMatchObject({ seq: 0, pollUntil: T0 + 120_001 });
      expect(deadFinish).toBe(false);
    });

    it("restarts a chain only if it is still as the keeper saw it, keeping firstStartedAt and lastSucceededAt", async () => {
      // Prepare
      const chains = await makeChains();
      const t = tenant();
      const m0 = { mailboxId: "a@x.it", chain: "c1", seq: 0 };
      await chains.start(t, "a@x.it", "c1", T0, undefined);
      await chains.take(t, m0, T0, T0 + 60_000);
      await chains.finish(t, m0, T0 + 60_000, { at: T0 + 1_000, nextPollAt: T0 + 11_000 });
      const [seen] = await chains.list(t);
      if (seen === undefined) throw new Error("no item");
      await chains.take(t, { ...m0, seq: 1 }, T0 + 11_000, T0 + 71_000);
      // Act: the keeper read the item before the poll took it; then it re-reads.
      const raced = await chains.start(t, "a@x.it", "c2", T0 + 200_000, seen);
      const [now] = await chains.list(t);
      if (now === undefined) throw new Error("no item");
      const restarted = await chains.start(t, "a@x.it", "c2", T0 + 200_000, now);
      const oldFinish = await chains.finish(t, { ...m0, seq: 1 }, T0 + 71_000, {
        at: T0 + 200_001,
        nextPollAt: 0,
      });
      // Assess
      expect([raced, restarted, oldFinish]).toEqual([false, true, false]);
      expect(await chains.list(t)).toEqual([
        {
          mailboxId: "a@x.it",
          chain: "c2",
          seq: 0,
          nextPollAt: T0 + 200_000,
          firstStartedAt: T0,
          lastSucceededAt: T0 + 1_000,
          lastPolledAt: T0 + 1_000,
        },
      ]);
    });

    it("shows a poll's hold (its pollUntil) until the poll finishes, and none without a chain", async () => {
      // Prepare
      const chains = await makeChains();
      const t = tenant();
      const m0 = { mailboxId: "a@x.it", chain: "c1", seq: 0 };
      await chains.start(t, "a@x.it", "c1", T0, undefined);
      // Act
      const none = await chains.heldUntil(t, "b@x.it");
      const before = await chains.heldUntil(t, "a@x.it");
      await chains.take(t, m0, T0, T0 + 60_000);
      const held = await chains.heldUntil(t, "a@x.it");
      await chains.finish(t, m0, T0 + 60_000, { at: T0 + 1_000, nextPollAt: T0 + 11_000 });
      const after = await chains.heldUntil(t, "a@x.it");
      // Assess
      expect([none, before, held, after]).toEqual([undefined, undefined, T0 + 60_000, undefined]);
    });

    it("amends a recorded success into a failure, putting back the earlier success, only while it is as recorded", async () => {
      // Prepare: seq 0 succeeded at T0 + 1 s; seq 1 recorded as a success at T0 + 12 s.
      const chains = await makeChains();
      const t = tenant();
      const m0 = { mailboxId: "a@x.it", chain: "c1", seq: 0 };
      const m1 = { ...m0, seq: 1 };
      await chains.start(t, "a@x.it", "c1", T0, undefined);
      await chains.take(t, m0, T0, T0 + 60_000);
      await chains.finish(t, m0, T0 + 60_000, { at: T0 + 1_000, nextPollAt: T0 + 11_000 });
      await chains.take(t, m1, T0 + 11_000, T0 + 71_000);
      const recorded = { at: T0 + 12_000, nextPollAt: T0 + 22_000 };
      await chains.finish(t, m1, T0 + 71_000, recorded);
      const failed = {
        at: T0 + 12_000,
        nextPollAt: T0 + 22_000,
        failure: { kind: "retryable" as const, code: "X" },
      };
      // Act
      const wrongRecord = await chains.amend(t, m1, { ...recorded, at: T0 + 1 }, failed, T0 + 1_000);
      const wrongSeq = await chains.amend(t, m0, recorded, failed, T0 + 1_000);
      const amended = await chains.amend(t, m1, recorded, failed, T0 + 1_000);
      const [item] = await chains.list(t);
      const back = await chains.amend(t, m1, recorded, { ...recorded, nextPollAt: T0 + 40_000 }, undefined);
      const [succeeded] = await chains.list(t);
      // Assess
      expect([wrongRecord, wrongSeq, amended, back]).toEqual([false, false, true, true]);
      expect(item).toEqual({
        mailboxId: "a@x.it",
        chain: "c1",
        seq: 2,
        nextPollAt: T0 + 22_000,
        firstStartedAt: T0,
        lastSucceededAt: T0 + 1_000,
        lastPolledAt: T0 + 12_000,
        lastFailure: "retryable",
        lastFailureCode: "X",
      });
      expect(succeeded).toEqual({
        mailboxId: "a@x.it",
        chain: "c1",
        seq: 2,
        nextPollAt: T0 + 40_000,
        firstStartedAt: T0,
        lastSucceededAt: T0 + 12_000,
        lastPolledAt: T0 + 12_000,
      });
    });
  });
}
