import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMailbox } from "../fixtures/awkward-messages";
import { PipelineRig, PipelineWorld } from "./pipeline-harness";

/**
 * Issue 4 item 3, the last fault: Dovecot with `pop3_lock_session = yes` while another client
 * holds the maildrop. The lister and the copier treat `-ERR [IN-USE]` as "later", never as a
 * failed message: no record fails, no receive is counted towards the DLQ, nothing is lost.
 */
describe("a maildrop locked by another client", () => {
  let world: PipelineWorld;
  let rig: PipelineRig | undefined;

  beforeAll(async () => {
    world = await PipelineWorld.start({ users: ["locked"], lockSession: true });
  });

  afterAll(async () => {
    await rig?.stop();
    await world?.stop();
  });

  it("waits for the lock instead of failing, then copies everything once", async () => {
    // Prepare
    rig = await PipelineRig.create(world, { user: "locked", transport: "plain" });
    await rig.deliver(generateMailbox(20, 11));
    const listed = await rig.poll();
    const holder = await rig.login();

    // Act: a poll and a copy batch while the other client holds the lock, then recovery.
    const busyPoll = await rig.poll();
    const batch = await rig.receive();
    const busyCopy = await rig.copyMessages(batch);
    const delaysWhileLocked = [...rig.requestedDelays];
    const stillQueued = await rig.queueDepth();
    await holder.quit();
    await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    expect(listed).toMatchObject({ outcome: "listed", newMessages: 20 });
    expect(busyPoll).toMatchObject({ outcome: "busy" });
    expect(batch).toHaveLength(10);
    expect(busyCopy.batchItemFailures).toEqual([]);
    expect(delaysWhileLocked).toEqual([60]);
    expect(stillQueued).toBe(20);
    expect(rig.events.ofType("busy").map((e) => e.reason)).toEqual(["IN-USE", "IN-USE"]);
    expect(rig.maxReceiveCount).toBe(1);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ deleted: 20, uncertain: 0 });
  });
});
