import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMailbox } from "../fixtures/awkward-messages";
import { PipelineRig, PipelineWorld } from "./pipeline-harness";

/**
 * Issue 4, "What it must show" item 2: the real handlers, in-process, against Dovecot (implicit
 * TLS, verified with the harness CA), fauxqs (SQS and S3), dynalite and the Gmail API stand-in.
 */
describe("the pipeline end to end", () => {
  let world: PipelineWorld;
  const rigs: PipelineRig[] = [];

  beforeAll(async () => {
    world = await PipelineWorld.start({ users: ["bulk"] });
  });

  afterAll(async () => {
    for (const rig of rigs) await rig.stop();
    await world?.stop();
  });

  it("moves 300 awkward messages: archived byte-exact, in Gmail exactly once, gone from POP3", async () => {
    // Prepare
    const rig = await PipelineRig.create(world, { user: "bulk" });
    rigs.push(rig);
    await rig.deliver(generateMailbox(300, 42));

    // Act
    const first = await rig.poll();
    const rounds = await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    expect(rig.served.size).toBe(300);
    expect(first).toMatchObject({ outcome: "listed", newMessages: rig.served.size });
    expect(result.problems).toEqual([]);
    expect(result.deleted).toBe(rig.served.size);
    expect(await world.dovecot.storedMessageCount("bulk")).toBe(0);
    expect(rig.events.ofType("imported")).toHaveLength(rig.served.size);
    expect(rig.events.ofType("quarantined")).toEqual([]);
    expect(rig.maxReceiveCount).toBe(1);
    expect(rounds).toBeLessThanOrEqual(2);
  });
});
