import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TimeoutError, TransientError } from "../../shared/core/errors";
import { FakeMailSink } from "../fakes/in-memory-mail-sink";
import { InMemoryPop3Source } from "../fakes/in-memory-pop3-source";
import { runs, scaledTimeout } from "./support/faults-scale";
import { faultMailbox, PipelineRig, TENANT } from "./support/pipeline-rig";

/** One message arriving: under a UIDL the server reuses (if one is free), sharing or lacking a Message-ID. */
interface Arrival {
  readonly reuseUidl: boolean;
  readonly shareMessageId: boolean;
  readonly withoutMessageId: boolean;
  readonly body: string;
}

/** What happens before one pass: new mail, Gmail failures, a lost ledger. */
interface Step {
  readonly arrivals: readonly Arrival[];
  /** Imports that fail with a 5xx before Gmail stored anything (the outcome looks uncertain). */
  readonly failBefore: number;
  /** Imports Gmail stored and then timed out on (uncertain, and it did happen). */
  readonly failAfter: number;
  readonly loseLedger: boolean;
}

/** Gmail failures in one history: fewer than the copier's 5 attempts, so none is a poison message. */
const MAX_FAULTS = 3;

const arrival: fc.Arbitrary<Arrival> = fc.record({
  reuseUidl: fc.boolean(),
  shareMessageId: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
  withoutMessageId: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
  body: fc.string({ maxLength: 120 }).map((text) => text.replace(/[\r\n]/g, " ")),
});

const step: fc.Arbitrary<Step> = fc.record({
  arrivals: fc.array(arrival, { maxLength: 4 }),
  failBefore: fc.integer({ min: 0, max: 2 }),
  failAfter: fc.integer({ min: 0, max: 2 }),
  loseLedger: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
});

/**
 * Issue 10, "widen the hostile tests": the identity classes of issue 10 tried at random against
 * the pipeline core (in-memory ledger, archive, queue, POP3 maildrop and Gmail): messages sharing a
 * Message-ID whose import fails with a 5xx (item 1), messages without one whose import ends
 * uncertain (item 2), new mail under a UIDL the server reuses after our committed DELE (item 3),
 * and the ledger lost between passes (item 6). Whatever the history, once it is over and the
 * pipeline ran to quiet: every message archived byte-exact, in Gmail exactly once, gone from the
 * server, nothing quarantined, and no QUIT ever committed a message not both archived and in Gmail.
 */
describe("message identity under random histories", () => {
  it(
    "delivers every message exactly once through shared Message-IDs, reused UIDLs, uncertain imports and lost ledgers",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (history) => {
          // Prepare
          const pop3 = new InMemoryPop3Source();
          const sink = new FakeMailSink();
          const rig = new PipelineRig(faultMailbox(), pop3, sink);
          const onServer = new Map<string, Buffer>();
          const delivered: Buffer[] = [];
          const messageIds: string[] = [];
          const freeUidls: string[] = [];
          const breaches: string[] = [];
          let faultBudget = MAX_FAULTS;
          pop3.onCommit = (uidls) => {
            for (const uidl of uidls) {
              const bytes = onServer.get(uidl);
              const inGmail = sink.imported.some(
                (m) => bytes !== undefined && Buffer.from(m.bytes).equals(bytes),
              );
              const archived = [...rig.archive.objects.values()].some(
                (o) => bytes !== undefined && Buffer.from(o.bytes).equals(bytes),
              );
              if (!inGmail || !archived)
                breaches.push(`${uidl}: committed while in Gmail=${inGmail}, archived=${archived}`);
              onServer.delete(uidl);
              freeUidls.push(uidl);
            }
          };
          const arrive = (a: Arrival) => {
            const shared = a.shareMessageId && messageIds.length > 0;
            const id = a.withoutMessageId
              ? undefined
              : shared
                ? messageIds[a.body.length % messageIds.length]
                : `<m${delivered.length}@hostile.test>`;
            if (id !== undefined && !shared) messageIds.push(id);
            const bytes = Buffer.from(
              [
                "From: a@example.test",
                "To: b@example.test",
                `Subject: message ${delivered.length}`,
                ...(id === undefined ? [] : [`Message-ID: ${id}`]),
                "",
                a.body,
                "",
              ].join("\r\n"),
            );
            const reuse = a.reuseUidl ? freeUidls.shift() : undefined;
            const uidl = reuse === undefined ? pop3.add(bytes) : pop3.add(bytes, reuse);
            onServer.set(uidl, bytes);
            delivered.push(bytes);
          };

          // Act: the history, one pass a minute, then recovery until the server is empty.
          for (const { arrivals, failBefore, failAfter, loseLedger } of history) {
            for (const a of arrivals) arrive(a);
            if (loseLedger) rig.loseLedger();
            // At most MAX_FAULTS in a whole history: more in a row would rightly quarantine a
            // message as failing (maxAttempts), which is not what this property is about.
            for (let i = 0; i < failBefore && faultBudget > 0; i++, faultBudget--) {
              sink.failNextImport(new TransientError("google", "Gmail answered 503 to the import"));
            }
            for (let i = 0; i < failAfter && faultBudget > 0; i++, faultBudget--) {
              sink.failAfterNextImport(new TimeoutError("google", "the import timed out"));
            }
            await rig.onePass();
            rig.clock.advance(60_000);
          }
          for (let pass = 0; pass < 40 && (pop3.uidls().length > 0 || rig.queue.size > 0); pass++) {
            await rig.onePass();
            // Past the import claim (16 min) and the lister's re-send of stuck jobs (30 min) in a few passes.
            rig.clock.advance(5 * 60_000);
          }

          // Assess
          const quarantined = await rig.ledger.listByState({ tenant: TENANT, mailboxId: rig.mailbox.id }, [
            "quarantined",
          ]);
          const copies = delivered.map(
            (bytes) => sink.imported.filter((m) => Buffer.from(m.bytes).equals(bytes)).length,
          );
          const archived = delivered.map((bytes) =>
            [...rig.archive.objects.values()].some((o) => Buffer.from(o.bytes).equals(bytes)),
          );
          expect(breaches).toEqual([]);
          expect(pop3.uidls(), "still on the server").toEqual([]);
          expect(copies, "copies in Gmail of each message").toEqual(delivered.map(() => 1));
          expect(sink.imported.length).toBe(delivered.length);
          expect(archived, "archived byte-exact").toEqual(delivered.map(() => true));
          expect(quarantined.map((e) => `${e.uidl}: ${e.quarantineCode}`)).toEqual([]);
        }),
        { numRuns: runs(60) },
      );
    },
    scaledTimeout(60_000),
  );
});
